"""Where listeners get their signal: exact samples inside the box, far-field estimates outside it.

A listener at least one cell inside the simulated box is a trilinear sample of the field. A
listener elsewhere (outside the box, at any distance) is estimated from the pressure sampled at
``FAR_FIELD_RAY_POINTS`` points on the ray from a source's centre o toward it, at distances rᵢ
between the source's surface and the box (both with a margin). Along a ray the radiated field is
fitted, per retarded time τ = t − r/c, by

    p(r, t) = A(τ)/r + B(τ)/r²

(least squares over the rᵢ; exact for a pulsating sphere, 1/r, and a translating one, 1/r + 1/r²,
centred at o), and evaluated at the listener's distance R:

    p_L(t) = Σᵢ wᵢ p(rᵢ, t − (R − rᵢ)/c),   wᵢ = P₀ᵢ/R + P₁ᵢ/R²,   P = pinv([1/rᵢ, 1/rᵢ²]).

The delays are fractional steps, applied with 4-point (cubic Lagrange) interpolation on the
step-rate samples; the result is resampled to the output rate once, with the rest.

Several sounding objects (objects with shaders) are separated by linearity: each is simulated
with only its own shaders active (a *source group*; the others still scatter), and every far
listener adds one ray per object. With at most one sounding object, or no far listener, there is
one group and one run. The ray origin is the centre of the object's bounding box at t = 0.

With a rigid ground the field above the floor is the free field of the object together with its
mirror image below it (the method of images; the grid's floor is that construction), so the
source is the pair: the ray starts on the floor under the object's centre, its inner radius
encloses object and image, and the fit above holds for the pair as for one compact source. A far
listener then hears the direct sound and the floor's reflection. Rays run above the floor; one at
floor height samples between the floor's mirror row and the first row, which is the mirror image's
field too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import FAR_FIELD_INNER_CELLS, FAR_FIELD_OUTER_CELLS, FAR_FIELD_RAY_POINTS
from .errors import SceneError


@dataclass(frozen=True)
class Ray:
    """Samples on the ray from one source group's centre toward a far listener.

    Attributes:
        group: index of the source group whose run the samples come from.
        channels: (k,) indices of the sample points among the probe points.
        radii: (k,) their distances from the origin (m); distance: the listener's (m).
        weights: (k,) wᵢ; delays: (k,) (R − rᵢ)/c (s).
    """

    group: int
    origin: np.ndarray
    channels: np.ndarray
    radii: np.ndarray
    distance: float
    weights: np.ndarray
    delays: np.ndarray


@dataclass(frozen=True)
class ListenerLayout:
    """Probe points of a run and how listener signals are made from them.

    Attributes:
        points: (m, 3) world positions sampled every step (m).
        groups: source groups: tuples of object indices whose shaders act together in one run.
        inside: per listener, its probe index if it is sampled in the box, else None.
        rays: per listener, the rays of a far listener (empty for one inside the box).
    """

    points: np.ndarray
    groups: tuple[tuple[int, ...], ...]
    inside: list[int | None]
    rays: list[list[Ray]]


def layout(scene) -> ListenerLayout:
    """Probe points, source groups and far-field rays of ``scene``. Raises SceneError if a ray
    has no room in the box or passes through an object."""
    grid = scene.grid
    far = [lis.far for lis in scene.listeners]
    sounding = [k for k, obj in enumerate(scene.objects) if obj.shaders]
    if any(far) and len(sounding) > 1:
        groups = tuple((k,) for k in sounding)
    else:
        groups = (tuple(range(len(scene.objects))),)
    points: list[np.ndarray] = []
    inside: list[int | None] = []
    rays: list[list[Ray]] = []
    for lis in scene.listeners:
        if not lis.far:
            inside.append(len(points))
            points.append(np.asarray(lis.position, dtype=np.float64))
            rays.append([])
            continue
        inside.append(None)
        lis_rays = []
        for g, group in enumerate(groups):
            sources = [k for k in group if scene.objects[k].shaders]
            if not sources:
                continue
            origin, radius = _source_sphere(scene, sources[0] if len(sources) == 1 else None)
            radii = _ray_radii(scene, origin, radius, np.asarray(lis.position), lis.name,
                               scene.objects[sources[0]].name if len(sources) == 1 else "the sources")
            u = (np.asarray(lis.position) - origin) / np.linalg.norm(np.asarray(lis.position) - origin)
            ray_points = origin + radii[:, None] * u
            _check_in_air(scene, ray_points, lis.name)
            R = float(np.linalg.norm(np.asarray(lis.position) - origin))
            fit = np.linalg.pinv(np.stack([1.0 / radii, 1.0 / radii ** 2], axis=1))
            channels = np.arange(len(points), len(points) + len(radii))
            points.extend(ray_points)
            lis_rays.append(Ray(group=g, origin=origin, channels=channels, radii=radii, distance=R,
                                weights=fit[0] / R + fit[1] / R ** 2,
                                delays=(R - radii) / grid.sound_speed))
        rays.append(lis_rays)
    pts = np.array(points, dtype=np.float64).reshape(-1, 3)
    return ListenerLayout(points=pts, groups=groups, inside=inside, rays=rays)


def listener_signals(lay: ListenerLayout, raw: np.ndarray, dt: float) -> np.ndarray:
    """Listener pressures (n_listeners, N) at the step rate from probe signals raw (groups, m, N)."""
    n = raw.shape[-1]
    out = np.zeros((len(lay.inside), n))
    for j, (idx, rays) in enumerate(zip(lay.inside, lay.rays)):
        if idx is not None:
            out[j] = raw[:, idx].sum(axis=0)
        for ray in rays:
            for ch, w, d in zip(ray.channels, ray.weights, ray.delays):
                out[j] += w * delay(raw[ray.group, ch], d / dt)
    return out


def delay(x: np.ndarray, steps: float) -> np.ndarray:
    """x delayed by a fractional number of steps ≥ 0 (cubic Lagrange interpolation; zero before x[0])."""
    whole = int(np.floor(steps))
    g = 1.0 - (steps - whole)
    # y[n] = x(j + g), j = n − whole − 1, from the points j−1 … j+2 = x[n − whole − 2 + m], m = 0 … 3
    taps = np.array([-g * (g - 1) * (g - 2) / 6, (g + 1) * (g - 1) * (g - 2) / 2,
                     -(g + 1) * g * (g - 2) / 2, (g + 1) * g * (g - 1) / 6])
    padded = np.concatenate([np.zeros(whole + 3), x, np.zeros(2)])
    n = len(x)
    y = np.zeros(n)
    for m in range(4):
        y += taps[m] * padded[1 + m:1 + m + n]  # padded[n + 1 + m] = x[n − whole − 2 + m]
    return y


def _source_sphere(scene, k: int | None) -> tuple[np.ndarray, float]:
    """Centre (bounding-box centre at t = 0; with a ground, the point of the floor under it) and
    enclosing radius about it of object k, or of all sounding ones."""
    objs = [scene.objects[k]] if k is not None else [o for o in scene.objects if o.shaders]
    corners = []
    for obj in objs:
        state = obj.motion.state(0.0)
        corners.append(obj.geometry.world_bounds(state))
    lo = np.min([c[0] for c in corners], axis=0)
    hi = np.max([c[1] for c in corners], axis=0)
    origin = 0.5 * (lo + hi)
    if scene.grid.ground:          # the source is the object with its mirror image: centred on the floor
        origin[2] = scene.grid.interior_bounds()[0, 2]
    radius = max(float(np.max(np.linalg.norm(obj.geometry.to_world(obj.geometry.vertices, obj.motion.state(0.0))
                                            - origin, axis=1))) for obj in objs)
    return origin, radius


def _ray_radii(scene, origin: np.ndarray, radius: float, target: np.ndarray, listener: str, source: str) -> np.ndarray:
    grid, h = scene.grid, scene.grid.h
    lo, hi = grid.interior_bounds()
    u = target - origin
    u = u / np.linalg.norm(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        exits = np.where(u > 0, (hi - origin) / u, np.where(u < 0, (lo - origin) / u, np.inf))
    r_out = float(np.min(exits)) - FAR_FIELD_OUTER_CELLS * h
    r_in = radius + FAR_FIELD_INNER_CELLS * h
    if r_out - r_in < (FAR_FIELD_RAY_POINTS - 1) * h:
        raise SceneError(str(scene.path), "domain.size",
                         f"no room for the far-field ray from {source} toward listener '{listener}': it needs "
                         f"{(FAR_FIELD_RAY_POINTS - 1) * h:.3g} m of air between {r_in:.3g} m (the source's radius + "
                         f"{FAR_FIELD_INNER_CELLS} cells) and {r_out + FAR_FIELD_OUTER_CELLS * h:.3g} m (the box face) "
                         f"minus {FAR_FIELD_OUTER_CELLS} cells",
                         "enlarge domain.size so that the box extends at least about two source radii beyond the "
                         "source in the listener's direction")
    return np.linspace(r_in, r_out, FAR_FIELD_RAY_POINTS)


def _check_in_air(scene, points: np.ndarray, listener: str) -> None:
    h = scene.grid.h
    for obj in scene.objects:
        d = obj.geometry.signed_distance(points, obj.motion.state(0.0))[0]
        if np.any(d < h):
            raise SceneError(str(scene.path), "listeners",
                             f"the far-field ray toward listener '{listener}' passes through or next to object "
                             f"'{obj.name}'", "move the listener so that the line from the source to it stays in "
                             "the air inside the box, or move the object")
