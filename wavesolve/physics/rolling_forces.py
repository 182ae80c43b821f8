"""Rolling and sliding contact of a physics run as forces on each body (``wavesolve.rolling``).

Each continuous touch (``touches.extract_touches``) whose contact point moves (``MIN_ROLLING_SPEED``)
over a surface that is not smooth gets one roughness force F(t), from its engine samples: the
normal force N (averaged over ``constants.TOUCH_SMOOTHING``, at least 1e-3 of its median: a sliding
box's engine load hops between its corners step by step, and falls to zero at a touch's ends),
the speeds of the contact point over each surface, the pair's reduced effective mass μ along the
normal (each body's ``Body.effective_mass`` at the touch's middle state, rotation included; the
ground immovable), Hertz's constant and the patch radius at the median N (each body's radius the
one of the sphere of its volume, against a flat other surface, as for impacts). Each surface's
profile is drawn from a generator seeded by the touch's place in the run and the surface's side,
so a run's scene is the same each time it is written. Body a gets F along the touch's normal,
body b (unless the ground) the same F along its opposite; both in their object frames at the
engine's states, in scene time (the part before ``sound.start`` cut off).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..constants import TOUCH_SMOOTHING
from ..contact import equivalent_radius
from ..rolling import (
    FORCE_RATE,
    MIN_ROLLING_SPEED,
    ContactForce,
    hertz_constant,
    hertz_contact,
    roughness_force,
)
from .engine import GROUND, Recording
from .setup_file import PhysicsSetup
from .touches import Touch


def body_rolling(setup: PhysicsSetup, rec: Recording, touches: list[Touch], rate: float = FORCE_RATE
                 ) -> list[list[ContactForce]]:
    """Per body (setup order), the roughness forces of its touches (module docstring)."""
    start = setup.config.sound.start
    ground = setup.config.ground
    out: list[list[ContactForce]] = [[] for _ in setup.bodies]
    rotations = [rec.rotation(i) for i in range(len(setup.bodies))]

    def roughness(i: int) -> float:
        return (ground.roughness if ground is not None else 0.0) if i == GROUND else setup.bodies[i].config.roughness

    def pose(i: int, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return setup.bodies[i].object_pose(rec.position[i, states], rotations[i][states])

    for n, touch in enumerate(touches):
        a, b = touch.body_a, touch.body_b
        rough_a, rough_b = roughness(a), roughness(b)
        keep = touch.times >= start - rec.time_step
        moving = [rough > 0 and float(np.abs(speed).max()) >= MIN_ROLLING_SPEED
                  for rough, speed in ((rough_a, touch.speed_a), (rough_b, touch.speed_b))]
        if not any(moving) or keep.sum() < 2 or touch.times[-1] <= start:
            continue
        mid = len(touch.states) // 2
        k_mid, point, normal = int(touch.states[mid]), touch.point[mid], touch.normal[mid]
        masses = []
        for i in (a, b):
            if i == GROUND:
                masses.append(math.inf)
                continue
            body = setup.bodies[i]
            x, R = pose(i, np.array([k_mid]))
            masses.append(body.effective_mass(R[0].T @ (point - x[0]), R[0].T @ normal))
        mu = 1.0 / sum(1.0 / m for m in masses if not math.isinf(m))
        width = max(1, int(round(TOUCH_SMOOTHING / rec.time_step)))
        mean_force = uniform_filter1d(touch.force, min(width, len(touch.force)), mode="nearest")
        load = float(np.median(mean_force))
        if load <= 0:
            continue
        body_a = setup.bodies[a]
        other = setup.ground_material if b == GROUND else setup.bodies[b].material
        radius = equivalent_radius(body_a.volume)
        _, patch = hertz_contact(load, body_a.material, other, radius)
        rng = np.random.default_rng([n, 0x5EED])
        t0, force = roughness_force(touch.times, np.maximum(mean_force, 1e-3 * load), touch.speed_a, touch.speed_b,
                                    mu, hertz_constant(body_a.material, other, radius), float(patch), rough_a,
                                    rough_b, rng, rate)
        first = max(0, int(math.ceil((start - t0) * rate - 1e-9)))
        if len(force) - first < 2:
            continue
        t0, force = t0 + first / rate, force[first:]
        states, times = touch.states[keep], touch.times[keep]
        for i, sign in ((a, 1.0), (b, -1.0)):
            if i == GROUND:
                continue
            x, R = pose(i, states)
            local = np.einsum("nji,nj->ni", R, touch.point[keep] - x)
            direction = sign * np.einsum("nji,nj->ni", R, touch.normal[keep])
            out[i].append(ContactForce(t0 - start, rate, force, times - start, local, direction))
    return out
