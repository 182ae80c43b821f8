"""Travelling sources: one box per following object, and what listeners hear from it.

Each object with ``[objects.domain] follow = true`` is simulated alone (its own shaders, no other
object) in a box of interior half-size H = a + margin around its centre s(t) (a: the radius of
its enclosing sphere about the centre of its mesh's bounding box), re-centred by whole-cell shifts
(:mod:`wavesolve.following`). Every listener hears it through a far-field estimate from K = 4 probe
points per listener, at radii r₁ … r_K (from a + 2h to H − h/2 − d − 3h, d the distance the object
moves in r_K/c) from the *emission point*.

Far field of a moving source (derivation). Sound emitted at time τ from the object's centre s(τ)
travels on straight rays in the still air. On the ray from s(τ) toward a listener at L
(direction u(τ) = (L − s(τ))/R(τ), R(τ) = |L − s(τ)|) the emitted wave is, as for a source at rest,
a function of the emission time and the distance from the emission point:

    p(s(τ) + r u, τ + r/c) = A(τ)/r + B(τ)/r²

(exact for a monopole and a dipole at rest; for a moving one the Doppler amplitude factor
(1 − M·u)⁻² and the convection of the near field are in A and B, which are measured, not assumed).
So at step n the box samples the K points x_i = s(τ_i) + r_i u(τ_i) with τ_i = t_n − r_i/c (each
point sees the sound emitted at τ_i), giving y_i(τ_i). Delaying channel i by (r_K − r_i)/c aligns
them on one emission time τ_n = t_n − r_K/c; the least-squares fit of A, B over the radii, evaluated
at R(τ_n), gives the listener's pressure

    p_L(t_L) = Σᵢ wᵢ(τ_n) yᵢ(τ_n),  wᵢ = P₀ᵢ/R(τ_n) + P₁ᵢ/R(τ_n)²,  P = pinv([1/rᵢ, 1/rᵢ²]),

at the arrival time t_L = τ_n + R(τ_n)/c. The arrival times are not uniform: dt_L/dτ = 1 − v·u/c
(v the source velocity), which is the Doppler shift f_L = f/(1 − v·u/c); the samples are
interpolated (cubic spline) onto the uniform step grid. For an object at rest this is the fixed
box's far-field formula (:mod:`wavesolve.farfield`).

Above a rigid ground (``[ground]``) the field is the free field of the object together with its
mirror image below the floor (the method of images: :mod:`wavesolve.floor_image`), so, as in the
fixed box (:mod:`wavesolve.farfield`), the source is the pair: the *emission point* is the point of
the floor under the object's centre, the enclosing radius a is the pair's about it (the object's
own radius plus the centre's greatest height over the floor), and a far listener hears the direct
sound and the floor's reflection. The box stands on the floor: its interior spans 2H × 2H
horizontally and H upward from the floor, and it follows its object along x and y only (an object
that rises stays inside, since H > a).

Interactions: one object's sound scattering off another is not simulated when they are in
different boxes. Whenever another object (following or in the fixed box) comes within a following
box, the scene logs a warning and the result carries it (attribute ``interaction_warnings``),
with the fix: simulate both in the fixed [domain] box.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from scipy.interpolate import CubicSpline

from .constants import (
    FAR_FIELD_INNER_CELLS,
    FAR_FIELD_OUTER_CELLS,
    FAR_FIELD_RAY_POINTS,
)
from .errors import SceneError
from .farfield import delay
from .grid import Grid
from .scene import Scene, SceneObject

log = logging.getLogger("wavesolve")

#: Times at which paths are checked (placement, listener distance, interactions).
_CHECK_TIMES = 200


@dataclass
class Traveller:
    """One following object's box and far-field rays.

    Attributes:
        obj: the object; index: its position in ``scene.travellers``.
        centre_local: (3,) object-frame centre of its bounding box (m); radius: enclosing radius (m).
        half_size: interior half-size H of its box (m).
        radii: (K,) ray sample radii from the emission point (m); fit: (2, K) P = pinv([1/r, 1/r²]).
        listeners: (m, 3) listener positions (m).
        ground: the floor's height z (m) when the scene has a ground, else None; lift: the greatest
            height of the object's centre above it over the run (m; in ``radius``).
    """

    obj: SceneObject
    index: int
    centre_local: np.ndarray
    radius: float
    half_size: float
    radii: np.ndarray
    fit: np.ndarray
    listeners: np.ndarray
    sound_speed: float
    duration: float
    ground: float | None = None
    lift: float = 0.0

    def centre(self, t: float | np.ndarray) -> np.ndarray:
        """Object centre s(t) in m: (3,) at a time t, (k, 3) at k times (one spline call); times are
        clamped to [0, duration]."""
        return _object_centre(self.obj, self.centre_local, np.clip(t, 0.0, self.duration))

    def emission_point(self, t: float | np.ndarray) -> np.ndarray:
        """Where its rays start (m), (3,) or (k, 3) as :meth:`centre`: the object's centre, or with a
        ground the point of the floor under it (module docstring). The box follows it."""
        point = self.centre(t)
        if self.ground is not None:
            point = np.array(point, dtype=np.float64)
            point[..., 2] = self.ground
        return point

    def bounds(self, t: float) -> np.ndarray:
        """(2, 3) world bounds of the box's interior (m) when centred on the object at time t (s)."""
        o = self.emission_point(t)
        lo, hi = o - self.half_size, o + self.half_size
        if self.ground is not None:
            lo[2], hi[2] = self.ground, self.ground + self.half_size
        return np.stack([lo, hi])

    def probe_points(self, t: float | np.ndarray) -> np.ndarray:
        """(m·K, 3) points sampled at time t, or (k, m·K, 3) at k times (one spline call for all):
        listener j's K points are rows j·K … j·K + K − 1."""
        times = np.atleast_1d(np.asarray(t, dtype=np.float64))
        radii = np.asarray(self.radii, dtype=np.float64)
        k, K, m = len(times), len(radii), len(self.listeners)
        centres = self.emission_point((times[:, None] - radii[None, :] / self.sound_speed).ravel()).reshape(k, 1, K, 3)
        u = self.listeners[None, :, None, :] - centres                          # (k, m, K, 3)
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        out = (centres + radii[None, None, :, None] * u).reshape(k, m * K, 3)
        return out[0] if np.ndim(t) == 0 else out

    def grid(self, scene: Scene, t: float = 0.0) -> Grid:
        """The box at t = 0 (same cell size, time step and layer as the scene's grid; standing on
        the ground if there is one), or at time t (s): the box at 0 moved by whole cells to the
        emission point then, as the shifts of a run from 0 place it (to within their half-cell
        hysteresis)."""
        g = scene.grid
        lo, hi = self.bounds(0.0)
        box = Grid.build(0.5 * (lo + hi), hi - lo, g.h, g.sound_speed, g.layer, step_rate=g.step_rate,
                         ground_height=self.ground)
        if t == 0.0:
            return box
        cells = np.rint((self.emission_point(t) - self.emission_point(0.0)) / g.h)
        return replace(box, origin=tuple(float(o) for o in np.asarray(box.origin) + cells * g.h))

    def simulation(self, scene: Scene, backend, start_step: int = 0,
                   shader_window: tuple[int, int] | None = None):
        """The object's box as a ``FollowingSimulation`` starting, from a silent field, at step
        ``start_step`` (placed by :meth:`grid` at that time), its shaders acting in ``shader_window``."""
        from .following import FollowingSimulation  # late import: following imports simulation

        return FollowingSimulation(scene, self.obj, self.grid(scene, start_step * scene.grid.dt), self.emission_point,
                                   self.probe_points, backend=backend, start_step=start_step,
                                   shader_window=shader_window)

    def listener_signals(self, raw: np.ndarray, dt: float) -> np.ndarray:
        """Listener pressures (m, N) at the step rate from the probe signals raw (m·K, N) (module docstring)."""
        K, c = len(self.radii), self.sound_speed
        n = raw.shape[-1]
        t = np.arange(n) * dt
        tau = t - self.radii[-1] / c
        s = self.emission_point(tau)
        out = np.zeros((len(self.listeners), n))
        for j, L in enumerate(self.listeners):
            R = np.linalg.norm(L - s, axis=1)
            emitted = np.zeros(n)
            for i, r in enumerate(self.radii):
                w = self.fit[0, i] / R + self.fit[1, i] / R ** 2
                emitted += w * delay(raw[j * K + i], (self.radii[-1] - r) / c / dt)
            arrival = tau + R / c
            inside = (t >= arrival[0]) & (t <= arrival[-1])
            out[j, inside] = CubicSpline(arrival, emitted)(t[inside])
        return out


def travellers(scene: Scene) -> list[Traveller]:
    """The boxes and rays of every following object of ``scene``. Raises SceneError when a box's
    margin leaves no room for the rays or a listener comes too close to a source."""
    return [_traveller(scene, k, obj) for k, obj in enumerate(scene.travellers)]


def _traveller(scene: Scene, k: int, obj: SceneObject) -> Traveller:
    h, c, T = scene.grid.h, scene.grid.sound_speed, scene.duration
    file, key = str(scene.path), f"objects[{scene.config_index(obj)}].domain.margin"
    v = obj.geometry.vertices
    centre_local = 0.5 * (v.min(axis=0) + v.max(axis=0))
    radius = float(np.max(np.linalg.norm(v - centre_local, axis=1)))
    times = np.linspace(0.0, T, _CHECK_TIMES)
    obj.motion.prefetch(times)
    speed = max(float(np.linalg.norm(obj.motion.state(t).velocity)) for t in times)
    ground = scene.config.ground.height if scene.config.ground is not None else None
    lift = 0.0
    if ground is not None:          # the pair (object and image) about the floor point under the centre
        lift = max(0.0, float(np.max(_object_centre(obj, centre_local, times)[:, 2])) - ground)
        radius += lift
    limit = min(0.5 * h / scene.grid.dt, 0.9 * c)   # one shift per step and axis; arrival times increasing
    if speed >= limit:
        raise SceneError(file, f"objects[{scene.config_index(obj)}].motion",
                         f"travelling object '{obj.name}' reaches {speed:.4g} m/s; a following box supports up to "
                         f"{limit:.4g} m/s (half a cell per step, and well below the speed of sound)",
                         "slow the motion down, or set follow = false and simulate it in the fixed [domain] box")
    half = radius + obj.follow_margin
    r_in = radius + FAR_FIELD_INNER_CELLS * h
    drift = speed * half / c
    r_out = half - 0.5 * h - drift - FAR_FIELD_OUTER_CELLS * h
    need = (FAR_FIELD_RAY_POINTS - 1) * h
    if r_out - r_in < need:
        margin = need + FAR_FIELD_INNER_CELLS * h + 0.5 * h + FAR_FIELD_OUTER_CELLS * h + drift
        raise SceneError(file, key, f"the box following '{obj.name}' leaves no room for its far-field rays: they need "
                         f"{need:.3g} m of air between {r_in:.3g} m and {r_out:.3g} m from its centre",
                         f"set margin to at least {1.05 * margin:.3g} m (or remove it: the default is enough)")
    radii = np.linspace(r_in, r_out, FAR_FIELD_RAY_POINTS)
    fit = np.linalg.pinv(np.stack([1.0 / radii, 1.0 / radii ** 2], axis=1))
    listeners = np.array([lis.position for lis in scene.listeners], dtype=np.float64).reshape(-1, 3)
    trav = Traveller(obj, k, centre_local, radius, half, radii, fit, listeners, c, T, ground, lift)
    origins = trav.emission_point(times)
    for j, lis in enumerate(scene.listeners):
        dist = float(np.min(np.linalg.norm(listeners[j] - origins, axis=1)))
        if dist < r_in + h:
            raise SceneError(file, f"listeners[{j}].position",
                             f"listener '{lis.name}' comes within {dist:.3g} m of the "
                             + ("point of the ground under the centre" if ground is not None else "centre")
                             + f" of travelling object '{obj.name}'; its far-field estimate needs at least "
                             f"{r_in + h:.3g} m" + (" (it hears the object with its mirror image in the ground)"
                                                   if ground is not None else ""),
                             "move the listener away from the object's path")
    return trav


def _object_centre(obj: SceneObject, centre_local: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """World position of the object-frame point ``centre_local`` (m): (3,) at a time t, (k, 3) at k
    times (one spline call)."""
    position, rotation = obj.motion.pose(t)
    return rotation @ centre_local + position


def check_travellers(scene: Scene, quiet: bool = False) -> list[str]:
    """Validate the travelling boxes and the slices that move with them (SceneError) and return
    the interaction warnings (logged unless ``quiet``)."""
    boxes = travellers(scene)
    for trav in boxes:
        _check_slices(scene, trav)
        own = trav.radius - trav.lift
        if trav.lift > 2.0 * own and not quiet:
            log.warning("%s: travelling object '%s' rises %.3g m above the ground, %.1f times its own radius: its box "
                        "holds it with its mirror image (%.3g m wide), and the far-field fit of that pair loses "
                        "accuracy as it rises (README, \"Far-field listeners\": 18 %% off for a 5 cm sphere 7 cm "
                        "above the floor at 2 kHz). Without [ground] its box would be %.3g m wide", scene.path, trav.obj.name,
                        trav.lift, trav.lift / own, 2 * trav.half_size, 2 * (trav.half_size - trav.lift))
        kept = max((shader.kept_velocity() for shader in trav.obj.shaders if hasattr(shader, "kept_velocity")),
                   default=0.0)
        if kept > 0.0 and not quiet:
            log.warning("%s: travelling object '%s' has a shader that keeps the velocity its impacts give (up to "
                        "%.3g m/s): a steady flow around it, which a moving box's layer lets ring after each "
                        "impact (README, 'Travelling sources': 3.3e-2 of the peak energy 3.4 ms after an impact "
                        "at 15 m/s). To avoid it, set follow = false and enlarge [domain] to cover its path",
                        scene.path, trav.obj.name, kept)
    return interaction_warnings(scene, boxes, quiet)


def _check_slices(scene: Scene, trav: Traveller) -> None:
    """A slice that moves with ``trav``'s box must cut its interior: its position, measured from the
    point the box follows, within the box's half-size (over a ground, along z: 0 … H)."""
    names = [sl.name for sl in scene.config.slices]
    for spec in scene.slices:
        if spec.follows != trav.obj.name:
            continue
        lo, hi = trav.bounds(0.0)[:, spec.axis] - trav.emission_point(0.0)[spec.axis]
        if not lo <= spec.offset <= hi:
            axis = "xyz"[spec.axis]
            raise SceneError(str(scene.path), f"slices[{names.index(spec.name)}].position",
                             f"slice '{spec.name}' lies {spec.offset:g} m along {axis} from the point the box of "
                             f"'{trav.obj.name}' follows, outside the box, which spans {lo:.3g} … {hi:.3g} m from it",
                             "give a position in that range (0 is the plane through the object's centre"
                             + (", or through the floor under it along z" if trav.ground is not None else "") + ")")


def interaction_warnings(scene: Scene, boxes: list[Traveller], quiet: bool = False) -> list[str]:
    """Warnings for objects that come inside another object's following box (interaction not simulated)."""
    times = np.linspace(0.0, scene.duration, _CHECK_TIMES)
    others = list(scene.objects) + list(scene.travellers)
    out = []
    for box in boxes:
        for other in others:
            if other is box.obj:
                continue
            other.motion.prefetch(times)
            for t in times:
                lo, hi = other.geometry.world_bounds(other.motion.state(t))
                box_lo, box_hi = box.bounds(t)
                if np.all(lo < box_hi) and np.all(hi > box_lo):
                    out.append(f"object '{other.name}' comes inside the box following '{box.obj.name}' at "
                               f"t = {t:.4g} s: the sound of one scattering off the other is not simulated. To "
                               "simulate it, set follow = false on both and enlarge [domain] so that the fixed box "
                               "covers both paths")
                    break
    for text in [] if quiet else out:
        log.warning("%s: %s", scene.path, text)
    return out


def fixed_box_runs(scene: Scene) -> bool:
    """Whether a run of ``scene`` simulates its fixed box: only when an object in it (one that does
    not travel) has a shader; otherwise the box holds no source and its field is zero."""
    return any(o.shaders for o in scene.objects)


def travelling_listeners(scene: Scene, boxes: dict) -> np.ndarray:
    """Listener pressures (listeners, steps) at the step rate heard from the travelling boxes:
    ``boxes`` maps an object's name to its box's whole run (:class:`wavesolve.result.BoxRun`,
    from step 0: ``wavesolve.chunks.stitch_boxes``); a box not in it made no sound."""
    total = np.zeros((len(scene.listeners), scene.grid.steps_for(scene.duration)))
    for trav in travellers(scene):
        box = boxes.get(trav.obj.name)
        if box is not None:
            total += trav.listener_signals(box.data[:, :total.shape[1]], scene.grid.dt)
    return total
