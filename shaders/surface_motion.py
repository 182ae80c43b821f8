"""``surface_motion`` shader: the surface acceleration of the object's own motion.

aₙ(x, t) = gain · n · [a + α × r + ω × (ω × r) + a_deform(x)],  r = x − (object origin):
the rigid-body acceleration of the material point at x plus, for a deforming mesh, the
acceleration of its vertices interpolated on the triangle (world frame). Moving geometry alone
imposes ∂p/∂n = 0 (no sound); add this shader to hear the motion itself (a body shaken, swung,
spun or breathing). Its net volume acceleration Q̇ = ∮ aₙ dS over the closed mesh is known from
the motion alone (``BoundaryPoints.motion_volume_acceleration``: −2|ω|²·volume from the rigid
rotation, plus each deformed triangle's vector area times its corners' mean acceleration), and the
boundary holds the object's net face flux at it (``wavesolve.flux_balance``)::

    [[objects.shaders]]
    type = "surface_motion"
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig


class SurfaceMotionShader(Shader):
    """aₙ = gain · n·(rigid-body + deformation acceleration) at each boundary point."""

    knows_volume = True

    class Config(ShaderConfig):
        type: Literal["surface_motion"]
        gain: float = 1.0

    def volume_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """gain · ∮ n·a dS (m³/s²) of the motion at the points' time, (K,): the object does not move
        within a block of K > 1 times (those are asked for static geometry only)."""
        return np.full(len(times), self.config.gain * points.motion_volume_acceleration)

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        if len(points) == 0:
            return np.zeros(0)
        accel = np.zeros((len(points), 3))
        if points.state is not None:
            accel += points.state.surface_acceleration(points.position)
        if points.deformation_acceleration is not None:
            accel += points.deformation_acceleration
        return self.config.gain * np.einsum("ij,ij->i", accel, points.normal)
