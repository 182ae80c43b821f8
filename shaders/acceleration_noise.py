"""``acceleration_noise`` shader: the click of an impact — the rigid-body acceleration it causes.

Each impact's force f(t) is a half-sine pulse over its Hertz contact time (``wavesolve.contact``);
with a ``rolling_file``, each rolling or sliding touch adds its roughness force at its contact
point (``wavesolve.rolling``). The body (mass m, centre of mass x_cm and inertia I from the mesh
volume and the material density) accelerates as a rigid body, a = f/m, α = I⁻¹((x_c − x_cm) × f),
and every surface point x moves with it (Chadwick, Zheng & James 2012; PHYSICS.md):

    aₙ(x, t) = gain · n·[a + α × (x − x_cm)]

Scene table (impacts in the object frame; see ``wavesolve.contact`` for every impact key)::

    [[objects.shaders]]
    type = "acceleration_noise"
    material = "steel"                       # or an inline table (density is what matters here)
    impacts = [ { time = 0.01, position = [0.0, 0.0, -0.05], impulse = [0.0, 0.0, 0.05], speed = 1.2 } ]
    # impacts_file = "hits.csv"              # time,x,y,z,jx,jy,jz[,speed][,duration]
    # rolling_file = "ball_rolling.h5"       # rolling and sliding forces (wavesolve.rolling)

Only the acceleration *caused by the impulses* is rendered; the motion of the object through the
scene (its ``motion`` table) is ``surface_motion``'s business.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from wavesolve.contact import ForcingIndex, ImpactListConfig, mass_properties, resolve_impacts
from wavesolve.errors import SceneError
from wavesolve.materials import parse_material
from wavesolve.rolling import resolve_rolling
from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig, ShaderContext
from wavesolve.signals import merge_intervals


class AccelerationNoiseShader(Shader):
    """aₙ = gain · n·[f/m + α × (x − x_cm)] with f the sum of the impacts' half-sine forces."""

    rigid = True

    class Config(ShaderConfig, ImpactListConfig):
        type: Literal["acceleration_noise"]
        material: str | dict[str, Any]
        gain: float = 1.0

    def __init__(self, config: Config, context: ShaderContext) -> None:
        super().__init__(config, context)
        file, key = context.scene_file, context.key
        self.material = parse_material(config.material, file, f"{key}.material")
        if context.mesh is None:
            raise SceneError(file, key, "acceleration_noise needs the object's mesh", "use it in a scene file")
        try:
            self.mass, volume, self.center, inertia = mass_properties(context.mesh, self.material.density)
        except ValueError as exc:
            raise SceneError(file, f"{context.key.rsplit('.shaders', 1)[0]}.mesh", str(exc),
                             "use a closed (watertight) mesh") from None
        self.inverse_inertia = np.linalg.inv(inertia)
        self.impacts = resolve_impacts(config, self.material, self.mass, volume, file, key, context.scene_dir,
                                       self.center, self.inverse_inertia)
        # impacts and rolling pieces, sorted by start (each: t0, end, position, force(t) (3,) N)
        self.forces = sorted(self.impacts + resolve_rolling(config, file, key, context.scene_dir), key=lambda f: f.t0)
        self._index = ForcingIndex(self.forces)

    def kept_velocity(self) -> float:
        """The largest speed (m/s) the impacts leave the surface moving with between them and after
        the last: |gain · ΣJ / m| over the impacts so far (the shader renders each velocity change
        and keeps it)."""
        if not self.impacts:
            return 0.0
        order = np.argsort([imp.t0 for imp in self.impacts], kind="stable")
        running = np.cumsum([self.impacts[k].impulse for k in order], axis=0)
        return float(abs(self.config.gain) * np.linalg.norm(running, axis=1).max() / self.mass)

    def rigid_acceleration(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(a, α) at time t, object frame (m/s², rad/s²)."""
        force, torque = np.zeros(3), np.zeros(3)
        for i in self._index.overlapping(t, t, closed=True):
            f = self.forces[i].force(t)
            force += f
            torque += np.cross(self.forces[i].position - self.center, f)
        return force / self.mass, self.inverse_inertia @ torque

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        a, alpha = self.rigid_acceleration(t)
        if not (a.any() or alpha.any()) or len(points) == 0:
            return np.zeros(len(points))
        accel = a + np.cross(alpha, points.position_local - self.center)
        return self.config.gain * np.einsum("ij,ij->i", accel, points.normal_local)

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        spans = merge_intervals([(imp.t0, imp.end) for imp in self.forces])
        return [(max(a, t0), min(b, t1)) for a, b in spans if b > t0 and a < t1]
