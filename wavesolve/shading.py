"""The acoustic-shader protocol and the plug-in registry (entry-point group ``wavesolve.shaders``).

A shader gives the outward normal surface acceleration aₙ (m/s²) at boundary points; the solver
turns it into the boundary condition ∂p/∂n = −ρ aₙ. Shaders attached to one object add linearly.

Writing a shader::

    class MyShader(Shader):
        class Config(ShaderConfig):          # the keys of its [[objects.shaders]] table
            gain: float = 1.0

        def __init__(self, config, context): # config validated; context: ShaderContext
            super().__init__(config, context)

        def normal_acceleration(self, t, points):   # -> array (n,) in m/s²
            ...

        def reset(self, t):                  # restart at time t (time-parallel chunks)
            ...

        def active_intervals(self, t0, t1):  # optional: when aₙ can be non-zero
            return [(start, end), ...]       # within [t0, t1); None = don't know

        rigid = True                         # optional: aₙ is a rigid-body motion (no net volume)

        knows_volume = True                  # optional, for a shader that is not rigid: it gives
        def volume_acceleration_block(self, times, points):   # Q̇ = ∮ aₙ dS (m³/s²), (K,)
            ...

Time-parallel runs (``wavesolve.chunks``) use the two optional methods. ``reset(t)`` must put
the shader in the state it would have after running from 0 to t (a modal oscillator keeps
ringing into the next chunk through the shader, not through the field). ``active_intervals``
lets the adaptive planner (``--chunks auto``) cut the scene at silent gaps and lets a chunk skip
the silent steps at its start; a shader that does not know returns None (the default), which
counts as active all the time. An interval may be generous, never short: outside the listed
intervals aₙ must be zero (to about 1e-6 of its peak). ``rigid = True`` says the shader's aₙ is
always a rigid-body motion of its object, which displaces no volume. A shader that is not rigid
may instead give its net volume acceleration Q̇(t) = ∮ aₙ dS over the object's closed mesh
(``knows_volume`` and ``volume_acceleration_block``; the ``modal`` and ``shell`` shaders do, from
each mode's exact ∮ Uᵢ·n dS, and ``speaker`` from its region's exact area). Where every shader of an object is rigid or knows its volume, the
boundary holds the object's net volume flux at the sum of their Q̇ (``wavesolve.flux_balance``).

and register it in your package's ``pyproject.toml``::

    [project.entry-points."wavesolve.shaders"]
    my_shader = "my_package.module:MyShader"

The core never imports a shader by name: every shader, built-in or third-party, is found here.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from .motion import RigidState

ENTRY_POINT_GROUP = "wavesolve.shaders"


class ShaderConfig(BaseModel):
    """Base of every shader's configuration model; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class ShaderContext:
    """What a shader may know about its surroundings when it is built.

    Attributes:
        scene_file: path of the scene file (for error messages).
        scene_dir: directory that relative file paths in the shader table are resolved against.
        key: TOML key of the shader's table, e.g. ``objects[0].shaders[1]``.
        object_name: name of the object the shader drives.
        density: air density ρ (kg/m³).
        sound_speed: c (m/s).
        duration: scene duration (s).
        mesh: the object's triangle mesh in its own frame (a trimesh.Trimesh, m; the rest shape for
            deforming objects); None where a shader is built outside a scene.
    """

    scene_file: str
    scene_dir: Path
    key: str
    object_name: str
    density: float
    sound_speed: float
    duration: float
    mesh: Any = None


class BoundaryPoints:
    """Surface points at which the boundary condition is imposed (one per ghost cell).

    Attributes:
        position: (n, 3) closest surface points, world frame (m).
        normal: (n, 3) unit outward normals, world frame.
        position_local: (n, 3) the same points in the object's own frame (m).
        normal_local: (n, 3) the same normals in the object's own frame.
        triangle: (n,) index of the mesh triangle each point lies on. May be given as a function
            returning it, called when first read (a keyed boundary system finds the triangles under
            its sliding points only for shaders that read them).
        state: the object's rigid-body state (pose, velocity, acceleration, angular velocity and
            acceleration, world frame) at the time of the query.
        deformation_acceleration: (n, 3) acceleration of a deforming mesh's surface at the points
            (vertex accelerations interpolated on the triangle, world frame, m/s²); None if rigid.
        motion_volume_acceleration: ∮ n·a dS (m³/s²) over the object's closed mesh of its surface's
            own acceleration a (rigid-body and deformation), at the time of the query. May be given
            as a function returning it, called when first read.
    """

    __slots__ = ("position", "normal", "position_local", "normal_local", "_triangle", "state",
                 "deformation_acceleration", "_motion_volume")

    def __init__(self, position: np.ndarray, normal: np.ndarray, position_local: np.ndarray,
                 normal_local: np.ndarray, triangle: np.ndarray | Callable[[], np.ndarray],
                 state: RigidState | None = None, deformation_acceleration: np.ndarray | None = None,
                 motion_volume_acceleration: float | Callable[[], float] = 0.0) -> None:
        self.position = position
        self.normal = normal
        self.position_local = position_local
        self.normal_local = normal_local
        self._triangle = triangle
        self.state = state
        self.deformation_acceleration = deformation_acceleration
        self._motion_volume = motion_volume_acceleration

    @property
    def triangle(self) -> np.ndarray:
        if callable(self._triangle):
            self._triangle = self._triangle()
        return self._triangle

    @property
    def motion_volume_acceleration(self) -> float:
        if callable(self._motion_volume):
            self._motion_volume = float(self._motion_volume())
        return self._motion_volume

    def __len__(self) -> int:
        return len(self.position)


class Shader(abc.ABC):
    """Base class of acoustic shaders. Subclasses define ``Config`` and ``normal_acceleration``."""

    Config: ClassVar[type[ShaderConfig]] = ShaderConfig
    #: True where aₙ is always a rigid-body motion of the whole object (a + α × (x − c))·n, which
    #: displaces no volume: an object whose shaders all say so has its net face flux held at zero
    #: (wavesolve/flux_balance.py), which keeps its sound free of a spurious monopole.
    rigid: ClassVar[bool] = False
    #: True where :meth:`volume_acceleration_block` gives the net volume acceleration of this
    #: shader's aₙ (a rigid shader needs no more: its Q̇ is zero).
    knows_volume: ClassVar[bool] = False

    def __init__(self, config: ShaderConfig, context: ShaderContext) -> None:
        self.config = config
        self.context = context

    @abc.abstractmethod
    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        """Outward normal acceleration aₙ (m/s²), shape (len(points),), at time t (s)."""

    def normal_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """aₙ (m/s²), shape (K, len(points)), at K increasing times (s): the values of
        ``normal_acceleration`` at each, which is what this default evaluates. A shader may
        override it with a vectorised form (blocks of steps run on the GPU call it once a block),
        which may return a read-only view."""
        if len(times) == 0:
            return np.zeros((0, len(points)))
        return np.stack([self.normal_acceleration(float(t), points) for t in times])

    def volume_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """Q̇ = ∮ aₙ dS (m³/s²) over the object's closed mesh, shape (K,), at K increasing times (s):
        asked right after ``normal_acceleration_block`` (or ``normal_acceleration``, K = 1) for the
        same times and points (a shader may keep what that call computed). Zero for a ``rigid``
        shader; others that set ``knows_volume`` override it."""
        if self.rigid:
            return np.zeros(len(times))
        raise NotImplementedError(f"{type(self).__name__} does not know its net volume acceleration")

    def reset(self, t: float) -> None:  # noqa: B027 - stateless shaders need nothing
        """Restart the shader at time t (s), with the state it would have after running to t."""

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]] | None:
        """Sorted (start, end) times (s) within [t0, t1) outside of which aₙ is zero; None if unknown.

        None (the default) means "possibly active at every time"; [] means silent in [t0, t1).
        """
        return None


def available_shaders() -> dict[str, Any]:
    """Installed shaders: name → entry point (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def shader_class(name: str) -> type[Shader]:
    """Import and return the shader registered under ``name`` (KeyError if none)."""
    cls = available_shaders()[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Shader)):
        raise TypeError(f"entry point '{name}' in '{ENTRY_POINT_GROUP}' is not a wavesolve Shader")
    return cls
