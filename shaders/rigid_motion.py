"""``rigid_motion`` shader: the surface acceleration of the object's own rigid-body motion.

aₙ(x, t) = gain · n · [a + α × r + ω × (ω × r)],  r = x − (object origin), from the object's motion
(world frame). Moving geometry alone imposes ∂p/∂n = 0 (no sound); add this shader to hear the
motion itself (a body shaken, swung or spun), e.g.::

    [[objects.shaders]]
    type = "rigid_motion"
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig


class RigidMotionShader(Shader):
    """aₙ = gain · n·a_surface, a_surface the rigid-body acceleration of each boundary point."""

    class Config(ShaderConfig):
        type: Literal["rigid_motion"]
        gain: float = 1.0

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        if points.state is None or len(points) == 0:
            return np.zeros(len(points))
        accel = points.state.surface_acceleration(points.position)
        return self.config.gain * np.einsum("ij,ij->i", accel, points.normal)
