"""Contact events: the engine's many per-step contact impulses merged into impacts.

The rule (README, "Physics engine"):

1. Contact points of one body pair in one step that lie within ``match`` (m) of each other form
   one *touch*; its impulse is their sum, its point their normal-impulse-weighted mean.
2. A touch continues a touch of the same pair in the previous step if it lies within ``match``
   of it; otherwise it is *new* — a corner, face or rim vertex that has just met the other body.
3. A new touch opens an impact at the first step that gives it a positive normal impulse. The
   impact's speed is the normal approach speed at the touch point before that step; its impulse
   collects the touch's impulses until the bodies stop approaching there (relative normal velocity
   ≥ −0.1 × the approach speed after a step), the touch ends, or ``window`` (s) has passed.
4. A touch whose impact has closed is resting, rolling or sliding contact: its impulses are not
   impacts (``touches`` follows it: rolling and sliding sound).
5. Impacts slower than ``min_speed`` are dropped (PHYSICS.md: a few cm/s).

Both bodies of an impact get it: the impulse on a, and the opposite on b (unless b is the ground).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..constants import CONTACT_MATCH_DISTANCE, IMPACT_WINDOW, MIN_IMPACT_SPEED
from ..contact import equivalent_radius, hertz_duration
from .engine import GROUND, Recording
from .setup_file import PhysicsSetup

#: an impact closes once the relative normal velocity is above −CLOSE_FRACTION × its approach speed
CLOSE_FRACTION = 0.1


@dataclass(frozen=True)
class ContactEvent:
    """One impact between bodies a and b (world frame): start ``time`` and ``end`` (s), ``point``
    (m, 3), ``normal`` (unit, 3, from b towards a), ``impulse`` on a (N·s, 3), ``speed`` (normal
    approach speed, m/s), first and last state index ``first``, ``last`` of the steps it collected."""

    time: float
    end: float
    body_a: int
    body_b: int
    point: np.ndarray
    normal: np.ndarray
    impulse: np.ndarray
    speed: float
    first: int
    last: int


class _Touch:
    __slots__ = ("impulse", "normal", "point", "speed", "start", "status", "weight", "weighted")

    def __init__(self, point: np.ndarray) -> None:
        self.point, self.status = point, "new"
        self.start, self.speed = -1, 0.0
        self.impulse, self.weighted, self.weight, self.normal = np.zeros(3), np.zeros(3), 0.0, np.zeros(3)


def step_clusters(contacts: dict[str, np.ndarray], match: float
                  ) -> Iterator[tuple[int, dict[tuple[int, int], list[list[int]]]]]:
    """Each step that has contact points (ascending state index k) with its touches: per body pair
    (a, b), the row indices of its points grouped by rule 1 of this module's docstring (a point
    joins the first group whose first point lies within ``match``, else starts one)."""
    c = contacts
    if len(c["state"]) == 0:
        return
    order = np.lexsort((c["body_b"], c["body_a"], c["state"]))
    state = c["state"][order]
    steps = np.unique(state)
    bounds = np.searchsorted(state, np.append(steps, state.max() + 1))
    for s, k in enumerate(steps):
        pairs: dict[tuple[int, int], list[int]] = {}
        for r in order[bounds[s]:bounds[s + 1]]:
            pairs.setdefault((int(c["body_a"][r]), int(c["body_b"][r])), []).append(int(r))
        grouped: dict[tuple[int, int], list[list[int]]] = {}
        for pair, members in pairs.items():
            clusters: list[list[int]] = []
            for r in members:
                for cl in clusters:
                    if np.linalg.norm(c["position"][r] - c["position"][cl[0]]) <= match:
                        cl.append(r)
                        break
                else:
                    clusters.append([r])
            grouped[pair] = clusters
        yield int(k), grouped


def cluster_point(contacts: dict[str, np.ndarray], rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A touch's point (normal-impulse-weighted mean of its points; their mean if it has no normal
    impulse) and its normal impulses' weighted normal sum (not normalised; the mean if none)."""
    jn = contacts["normal_impulse"][rows]
    pts, nrm = contacts["position"][rows], contacts["normal"][rows]
    if jn.sum() > 0:
        return (jn @ pts) / jn.sum(), jn @ nrm
    return pts.mean(axis=0), nrm.mean(axis=0)


def continued(point: np.ndarray, previous: list[np.ndarray], used: set[int], match: float) -> int:
    """Index of the nearest of the previous step's touch points not yet ``used`` if it lies within
    ``match`` of ``point`` (rule 2), else −1."""
    dist = [np.linalg.norm(point - q) if i not in used else np.inf for i, q in enumerate(previous)]
    j = int(np.argmin(dist)) if dist else -1
    return j if j >= 0 and dist[j] <= match else -1


def _normal_velocity(rec: Recording, k: int, body_a: int, body_b: int, point: np.ndarray,
                     normal: np.ndarray) -> float:
    """Relative normal velocity (m/s) of a's material point at ``point`` w.r.t. b's, at state k."""
    def material(i: int) -> np.ndarray:
        if i == GROUND:
            return np.zeros(3)
        return rec.velocity[i, k] + np.cross(rec.angular_velocity[i, k], point - rec.position[i, k])
    return float((material(body_a) - material(body_b)) @ normal)


def extract_events(rec: Recording, min_speed: float = MIN_IMPACT_SPEED, match: float = CONTACT_MATCH_DISTANCE,
                   window: float = IMPACT_WINDOW) -> list[ContactEvent]:
    """Impacts of a recording by the rule of this module's docstring, sorted by time."""
    c = rec.contacts
    events: list[ContactEvent] = []
    max_steps = max(1, int(math.ceil(window / rec.time_step - 1e-9)))
    live: dict[tuple[int, int], list[_Touch]] = {}

    def emit(pair: tuple[int, int], t: _Touch, last: int) -> None:
        t.status = "settled"
        if t.speed < min_speed or t.weight <= 0:
            return
        nrm = t.normal / (np.linalg.norm(t.normal) or 1.0)
        events.append(ContactEvent(time=float(rec.times[t.start - 1]), end=float(rec.times[last]), body_a=pair[0],
                                   body_b=pair[1], point=t.weighted / t.weight, normal=nrm, impulse=t.impulse.copy(),
                                   speed=t.speed, first=t.start, last=last))

    previous_step = None
    for k, pairs in step_clusters(c, match):
        if previous_step is not None and k != previous_step + 1:   # a gap: every touch has ended
            for pair, touches in live.items():
                for t in touches:
                    if t.status == "open":
                        emit(pair, t, previous_step)
            live = {}
        new_live: dict[tuple[int, int], list[_Touch]] = {}
        for pair, clusters in pairs.items():
            old = live.get(pair, [])
            used: set[int] = set()
            touches = []
            for cl in clusters:
                jn = c["normal_impulse"][cl]
                pts = c["position"][cl]
                point, normal = cluster_point(c, cl)
                j = continued(point, [t.point for t in old], used, match)
                if j >= 0:
                    used.add(j)
                    touch = old[j]
                    touch.point = point
                else:
                    touch = _Touch(point)
                if touch.status == "new" and jn.sum() > 0:
                    n_hat = normal / (np.linalg.norm(normal) or 1.0)
                    touch.status, touch.start = "open", int(k)
                    touch.speed = max(0.0, -_normal_velocity(rec, k - 1, pair[0], pair[1], point, n_hat))
                if touch.status == "open":
                    touch.impulse = touch.impulse + c["impulse"][cl].sum(axis=0)
                    touch.weighted = touch.weighted + jn @ pts
                    touch.weight += float(jn.sum())
                    touch.normal = touch.normal + normal
                    n_hat = touch.normal / (np.linalg.norm(touch.normal) or 1.0)
                    after = _normal_velocity(rec, k, pair[0], pair[1], point, n_hat)
                    if after >= -CLOSE_FRACTION * touch.speed or k - touch.start + 1 >= max_steps:
                        emit(pair, touch, int(k))
                touches.append(touch)
            for i, t in enumerate(old):   # touches that ended this step
                if i not in used and t.status == "open":
                    emit(pair, t, int(k) - 1)
            new_live[pair] = touches
        for pair, touches in live.items():
            if pair not in new_live:
                for t in touches:
                    if t.status == "open":
                        emit(pair, t, int(k) - 1)
        live = new_live
        previous_step = k
    for pair, touches in live.items():
        for t in touches:
            if t.status == "open":
                emit(pair, t, previous_step)
    events.sort(key=lambda e: (e.time, e.body_a, e.body_b))
    return events


@dataclass
class BodyImpacts:
    """Impacts on one body in its object frame: rows (n, 9) = time, x, y, z, jx, jy, jz, speed,
    duration (s, m, N·s, m/s, s) — the layout of an ``impacts_file``."""

    name: str
    rows: np.ndarray


def body_impacts(setup: PhysicsSetup, rec: Recording, events: list[ContactEvent]) -> list[BodyImpacts]:
    """Each body's impacts in its object frame, with their Hertz contact durations.

    The pose is taken at the state before the impact's first step. The duration is Hertz's
    (``wavesolve.contact``): this body's effective mass at the point (rotation included), its
    material and equal-volume radius, against the other body's material and effective mass (the
    ground: immovable and flat).
    """
    rot = [rec.rotation(i) for i in range(len(setup.bodies))]
    rows: list[list[list[float]]] = [[] for _ in setup.bodies]
    local_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def local(i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        if (i, k) not in local_cache:
            local_cache[(i, k)] = setup.bodies[i].object_pose(rec.position[i, k], rot[i][k])
        return local_cache[(i, k)]

    def eff_mass(i: int, k: int, point: np.ndarray, direction: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        body = setup.bodies[i]
        x, R = local(i, k)
        p_loc, d_loc = R.T @ (point - x), R.T @ direction
        return body.effective_mass(p_loc, d_loc), p_loc, d_loc

    for e in events:
        k = e.first - 1
        for me, other, sign in ((e.body_a, e.body_b, 1.0), (e.body_b, e.body_a, -1.0)):
            if me == GROUND:
                continue
            body = setup.bodies[me]
            m_me, p_loc, j_loc = eff_mass(me, k, e.point, sign * e.impulse)
            if other == GROUND:
                other_mat, other_mass = setup.ground_material, math.inf
            else:
                other_mat = setup.bodies[other].material
                other_mass = eff_mass(other, k, e.point, -sign * e.impulse)[0]
            radius = equivalent_radius(body.volume)
            tau = hertz_duration(e.speed, m_me, radius, body.material, other_mat, math.inf, other_mass)
            rows[me].append([e.time, *p_loc, *j_loc, e.speed, tau])
    return [BodyImpacts(b.name, np.asarray(r, float).reshape(-1, 9)) for b, r in zip(setup.bodies, rows)]
