"""``prescribed`` shader: a given signal s(t) drives the surface, for validation and simple sources.

Scene table::

    [[objects.shaders]]
    type = "prescribed"
    pattern = "pulsate"                 # aₙ = s(t): the whole surface breathes
    signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }

    [[objects.shaders]]
    type = "prescribed"
    pattern = "translate"               # aₙ = s(t)·(d·n): rigid translation along d
    direction = [1.0, 0.0, 0.0]
    signal = { file = "accel.wav" }     # mono float WAV in m/s²

s(t) is an acceleration in m/s².
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from wavesolve.errors import SceneError
from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig, ShaderContext
from wavesolve.signals import parse_signal


class PrescribedShader(Shader):
    """aₙ = s(t) (pulsate) or aₙ = s(t)·(d̂·n) (translate; d̂ the unit direction, world frame: a
    rigid motion, ``rigid`` on the instance)."""

    class Config(ShaderConfig):
        type: Literal["prescribed"]
        pattern: Literal["pulsate", "translate"]
        signal: dict[str, Any]
        direction: list[float] | None = Field(default=None, min_length=3, max_length=3)

    def __init__(self, config: Config, context: ShaderContext) -> None:
        super().__init__(config, context)
        key = context.key
        self.signal = parse_signal(config.signal, context.scene_file, f"{key}.signal", context.scene_dir)
        if config.pattern == "translate":
            if config.direction is None:
                raise SceneError(context.scene_file, f"{key}.direction", "pattern 'translate' needs a direction",
                                 "add direction = [x, y, z] (the axis of motion, world frame)")
            d = np.asarray(config.direction, dtype=np.float64)
            norm = float(np.linalg.norm(d))
            if not np.isfinite(norm) or norm == 0.0:
                raise SceneError(context.scene_file, f"{key}.direction", "direction has zero length",
                                 "give a non-zero vector, e.g. [1.0, 0.0, 0.0]")
            self.direction = d / norm
            self.rigid = True        # a rigid translation: no net volume (wavesolve.flux_balance)
        elif config.direction is not None:
            raise SceneError(context.scene_file, f"{key}.direction", "direction is only used by pattern 'translate'",
                             "remove it, or set pattern = \"translate\"")

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]] | None:
        """The signal's active intervals (every built-in signal knows them)."""
        spans = getattr(self.signal, "active_intervals", None)
        return spans(t0, t1) if spans is not None else None

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        s = float(self.signal(t))
        if self.config.pattern == "pulsate":
            return np.full(len(points), s)
        return s * (points.normal @ self.direction)

    def normal_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        s = np.asarray(self.signal(np.asarray(times, dtype=np.float64)), dtype=np.float64).reshape(-1, 1)
        if self.config.pattern == "pulsate":
            return np.broadcast_to(s, (len(s), len(points)))       # a read-only view: no copy
        return s * (points.normal @ self.direction)[None, :]
