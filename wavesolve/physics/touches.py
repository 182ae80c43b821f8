"""Continuous contact: resting, rolling and sliding touches between bodies, from a recording.

An impact (``events``) is the first few steps of a touch; after it closes the touch goes on as
continuous contact, which is what rolling and sliding sound is made of. The rule:

1. The contact points of one body pair in one step form touches exactly as for impacts
   (:func:`~wavesolve.physics.events.step_clusters`: points within ``match`` of each other), each
   with its point (normal-impulse-weighted mean), normal and normal force (Σ normal impulse / Δt).
2. A touch continues the previous step's nearest touch of the same pair within ``match`` (as for
   impacts); a touch that continues none starts a new one, except that it may *bridge a gap*: it
   continues a touch of the pair last seen at most ``max_gap`` seconds before (and not continued in
   this step) whose last point lies within ``match`` of it in a's frame or in b's frame. PyBullet
   needs this for a sliding box: its contact manifold holds two or three points at a time and moves
   them round the four corners, so each corner is reported two steps out of four, and while the box
   chatters a corner can be missing for several milliseconds. The bridged steps get the point and
   normal interpolated linearly and force 0 (the engine reported none).
3. Steps of a touch inside an impact of the same pair (state within the impact's [first, last]
   steps and the impact's point within ``match`` of the touch's) are not continuous contact: they
   are dropped and the touch is split there. Leading and trailing steps with no force are dropped
   too (points inside the engine's contact margin that do not push).
4. Touches lasting fewer than ``min_duration`` (n steps last n·Δt) are dropped.

Speeds (m/s) at each step, with x_c the touch's point and n̂ its unit normal:

    w   = dx_c/dt                        (Savitzky–Golay derivative of the point over ``smoothing`` s)
    m_a = v_a + ω_a × (x_c − x_a)        (a's material velocity at x_c; smoothed with the same filter)
    speed_a = |(w − m_a) − ((w − m_a)·n̂) n̂|

and speed_b likewise with b (the ground's m_b = 0: speed_b is then the point's speed in the world).
speed_a is how fast the contact point moves over a's surface: 0 for a body resting or sliding on a
fixed spot of it, v for a sphere rolling at v. The smoothing removes PyBullet's contact jitter: a
touch's point hops by a fraction of a millimetre as the manifold refreshes, and a sliding box's
angular velocity flips step by step (±0.6 rad/s) as the load moves from corner to corner.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from ..constants import (
    CONTACT_MATCH_DISTANCE,
    TOUCH_MAX_GAP,
    TOUCH_MIN_DURATION,
    TOUCH_SMOOTHING,
)
from .engine import GROUND, Recording
from .events import ContactEvent, cluster_point, continued, step_clusters


@dataclass
class Touch:
    """One continuous (resting, rolling or sliding) contact between bodies a and b over consecutive
    engine states, world frame. body_b may be GROUND (-1).
    states (n,) int: state indices k (consecutive); times (n,) s: rec.times[states];
    point (n, 3) m: the touch's contact point (normal-impulse-weighted mean of its cluster);
    normal (n, 3): unit, from b towards a; force (n,) N: normal force (Σ normal impulse / time step);
    speed_a, speed_b (n,) m/s: the speed at which the contact point moves over a's surface and over b's
    (the ground's: its speed in the world). Formulas: this module's docstring."""
    body_a: int
    body_b: int
    states: np.ndarray
    times: np.ndarray
    point: np.ndarray
    normal: np.ndarray
    force: np.ndarray
    speed_a: np.ndarray
    speed_b: np.ndarray


class _Chain:
    """A touch being followed: its rows so far."""

    __slots__ = ("force", "normal", "point", "states")

    def __init__(self) -> None:
        self.states: list[int] = []
        self.point: list[np.ndarray] = []
        self.normal: list[np.ndarray] = []
        self.force: list[float] = []

    def add(self, k: int, point: np.ndarray, normal: np.ndarray, force: float) -> None:
        if self.states and k > self.states[-1] + 1:     # bridge a gap (rule 2)
            k0, p0, n0 = self.states[-1], self.point[-1], self.normal[-1]
            for j in range(k0 + 1, k):
                f = (j - k0) / (k - k0)
                nrm = (1 - f) * n0 + f * normal
                self.states.append(j)
                self.point.append((1 - f) * p0 + f * point)
                self.normal.append(nrm / (np.linalg.norm(nrm) or 1.0))
                self.force.append(0.0)
        self.states.append(k)
        self.point.append(point)
        self.normal.append(normal)
        self.force.append(force)


def extract_touches(rec: Recording, events: list[ContactEvent], match: float = CONTACT_MATCH_DISTANCE,
                    min_duration: float = TOUCH_MIN_DURATION, smoothing: float = TOUCH_SMOOTHING,
                    max_gap: float = TOUCH_MAX_GAP) -> list[Touch]:
    """Continuous contacts of a recording by the rule of this module's docstring; ``events`` are its
    impacts (``extract_events(rec)``). Sorted by (start time, body_a, body_b)."""
    c, dt = rec.contacts, rec.time_step
    gap_steps = round(max_gap / dt)
    rotations: dict[int, np.ndarray] = {}

    def local(body: int, k: int, point: np.ndarray) -> np.ndarray:
        """``point`` in ``body``'s frame at state k (the ground's frame is the world's)."""
        if body == GROUND:
            return point
        if body not in rotations:
            rotations[body] = rec.rotation(body)
        return rotations[body][k].T @ (point - rec.position[body, k])

    chains: list[tuple[tuple[int, int], _Chain]] = []
    live: dict[tuple[int, int], list[_Chain]] = {}
    for k, pairs in step_clusters(c, match):
        for pair in list(live):       # forget touches unseen for longer than max_gap
            live[pair] = [ch for ch in live[pair] if k - ch.states[-1] <= gap_steps + 1]
        for pair, clusters in pairs.items():
            rows = []
            for cl in clusters:
                point, normal = cluster_point(c, cl)
                rows.append((point, normal / (np.linalg.norm(normal) or 1.0),
                             float(c["normal_impulse"][cl].sum()) / dt))
            old = live.get(pair, [])
            previous = [ch for ch in old if ch.states[-1] == k - 1]
            used: set[int] = set()
            owner: list[_Chain | None] = []
            for point, _, _ in rows:          # continuing the previous step's touches (as for impacts)
                j = continued(point, [ch.point[-1] for ch in previous], used, match)
                if j >= 0:
                    used.add(j)
                owner.append(previous[j] if j >= 0 else None)
            taken = {id(ch) for ch in owner if ch is not None}
            for i, (point, _, _) in enumerate(rows):   # bridging a gap (or a fast slide), in a's or b's frame
                if owner[i] is not None:
                    continue
                best, best_d = None, match
                for ch in old:
                    if id(ch) in taken:
                        continue
                    j = ch.states[-1]
                    d = min(np.linalg.norm(local(b, k, point) - local(b, j, ch.point[-1])) for b in pair)
                    if d <= best_d:
                        best, best_d = ch, d
                if best is not None:
                    taken.add(id(best))
                    owner[i] = best
            for i, (point, normal, force) in enumerate(rows):
                if owner[i] is None:
                    owner[i] = _Chain()
                    chains.append((pair, owner[i]))
                owner[i].add(k, point, normal, force)
            live[pair] = owner + [ch for ch in old if id(ch) not in taken]
    touches = []
    for pair, ch in chains:
        states = np.asarray(ch.states, int)
        point, normal, force = np.asarray(ch.point), np.asarray(ch.normal), np.asarray(ch.force)
        keep = np.ones(len(states), bool)
        for e in events:
            if (e.body_a, e.body_b) == pair:
                keep &= ~((states >= e.first) & (states <= e.last)
                          & (np.linalg.norm(point - e.point, axis=1) <= match))
        for run in _runs(keep & (force > 0), keep):
            if len(run) * dt < min_duration * (1 - 1e-9):
                continue
            speed_a, speed_b = _speeds(rec, pair, states[run], point[run], normal[run], smoothing)
            touches.append(Touch(body_a=pair[0], body_b=pair[1], states=states[run], times=rec.times[states[run]],
                                 point=point[run], normal=normal[run], force=force[run], speed_a=speed_a,
                                 speed_b=speed_b))
    touches.sort(key=lambda t: (t.times[0], t.body_a, t.body_b))
    return touches


def _runs(pushing: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Index runs of consecutive kept rows, each trimmed to its first and last pushing row."""
    runs = []
    idx = np.flatnonzero(keep)
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        on = np.flatnonzero(pushing[run])
        if len(on):
            runs.append(run[on[0]:on[-1] + 1])
    return runs


def _smoothed(x: np.ndarray, dt: float, smoothing: float, deriv: int = 0) -> np.ndarray:
    """Savitzky–Golay (quadratic) value or derivative along axis 0 over about ``smoothing`` s,
    the window shortened to the rows there are."""
    n = len(x)
    length = max(1, round(smoothing / dt))
    length = min(length | 1, n if n % 2 else n - 1)
    if length < 3:
        return np.gradient(x, dt, axis=0) if deriv and n > 1 else (np.zeros_like(x) if deriv else x.copy())
    return savgol_filter(x, length, 2, deriv=deriv, delta=dt, axis=0, mode="interp")


def _speeds(rec: Recording, pair: tuple[int, int], states: np.ndarray, point: np.ndarray, normal: np.ndarray,
            smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """speed_a and speed_b of one touch (this module's docstring)."""
    dt = rec.time_step
    w = _smoothed(point, dt, smoothing, deriv=1)
    out = []
    for body in pair:
        if body == GROUND:
            rel = w
        else:
            material = rec.velocity[body, states] + np.cross(rec.angular_velocity[body, states],
                                                             point - rec.position[body, states])
            rel = w - _smoothed(material, dt, smoothing)
        tangential = rel - np.sum(rel * normal, axis=1, keepdims=True) * normal
        out.append(np.linalg.norm(tangential, axis=1))
    return out[0], out[1]
