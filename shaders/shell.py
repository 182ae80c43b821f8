"""``shell`` shader: the ringing of a thin shell (cymbal, plate, bell, can) struck by impacts.

The ``modal`` shader's machinery (impulse-invariant modal oscillators, half-sine Hertz impacts,
exact ``reset`` for chunks) driven by thin-shell modes: the modes come from a flat-facet shell
analysis of the object's **mid-surface** (``wavesolve.shell_fem``: membrane + DKT bending, physical
``thickness``), not from voxels of the closed mesh, which could not resolve a 1 mm cymbal.

The scene object's mesh must be a closed solid around the mid-surface (the grid needs about one
cell of thickness; make it with ``wavesolve.shell_mesh.thicken`` or ``wavesolve modal --shell
--closed-mesh``). Each of its vertices takes the mode shape of its closest mid-surface point, so
both faces and the rim move with the mid-surface:

    aₙ(x, t) = gain · Σᵢ (Uᵢ(x_mid)·n) q̈ᵢ(t).

Mass and inertia for the Hertz contact are those of the physical shell (ρ h per unit area of the
mid-surface), not of the thickened mesh; the shell is locally flat at the contact unless
``radius`` is given, so a Hertz impact needs the striker's ``other_radius`` (or a ``duration``).

Scene table::

    [[objects.shaders]]
    type = "shell"
    material = "brass"
    midsurface = "cymbal_mid.obj"     # open or closed triangle mesh, object frame (× midsurface_scale)
    thickness = 0.0012                # m, physical
    modes = "cymbal_modes.h5"         # optional: mid-surface modes (`wavesolve modal --shell`); omit to compute (cached)
    max_frequency = 6000.0            # Hz
    impacts = [ { time = 0.01, position = [0.1, 0.0, 0.02], impulse = [0.0, 0.0, -0.02], speed = 3.0 } ]
    other = "oak"
    other_radius = 0.007
"""
from __future__ import annotations

from typing import Any, Literal

import igl
import numpy as np
import trimesh
from pydantic import Field, PositiveFloat

from wavesolve.contact import ImpactListConfig
from wavesolve.errors import SceneError
from wavesolve.meshes import mesh_for_key
from wavesolve.modes import ModeSet
from wavesolve.shading import ShaderConfig, ShaderContext
from wavesolve.shell_mesh import transfer_shapes
from wavesolve.validation import read_named_file
from wavesolve_shaders.modal import ModalShader

#: the closed mesh must lie within this fraction of the mid-surface's bounding-box diagonal of it
#: (catches another frame or scale; a thick acoustic shell of a small part stays well inside)
MAX_WRAP_DISTANCE = 0.25
#: default highest mode kept when shell modes are computed (Hz)
DEFAULT_MAX_FREQUENCY = 8000.0


def shell_mass_properties(mid: trimesh.Trimesh, density: float, thickness: float
                          ) -> tuple[float, np.ndarray, np.ndarray]:
    """(mass kg, centre of mass (3,), inertia tensor about it (3, 3)) of a thin shell ρ h dA."""
    tri = np.asarray(mid.triangles, dtype=np.float64)                 # (F, 3, 3)
    area = np.asarray(mid.area_faces, dtype=np.float64)
    sigma = density * thickness
    mass = sigma * float(area.sum())
    center = sigma * np.einsum("f,fd->d", area, tri.mean(axis=1)) / mass
    s = tri.sum(axis=1)
    # ∫ x xᵀ dA over a triangle = A/12 (Σₖ vₖvₖᵀ + s sᵀ), s = Σₖ vₖ
    second = sigma * np.einsum("f,fij->ij", area / 12.0,
                               np.einsum("fki,fkj->fij", tri, tri) + np.einsum("fi,fj->fij", s, s))
    second -= mass * np.outer(center, center)
    inertia = np.trace(second) * np.eye(3) - second
    return mass, center, inertia


class ShellShader(ModalShader):
    """Σᵢ (Uᵢ·n) q̈ᵢ(t) with thin-shell modes of a mid-surface, on the object's closed mesh."""

    class Config(ShaderConfig, ImpactListConfig):
        type: Literal["shell"]
        material: str | dict[str, Any]
        midsurface: str = Field(description="mid-surface triangle mesh file, object frame")
        midsurface_scale: PositiveFloat = 1.0
        thickness: PositiveFloat = Field(description="physical shell thickness (m)")
        modes: str | None = Field(default=None, description="mid-surface modes file (HDF5); None: compute")
        max_frequency: PositiveFloat | None = Field(default=None, description="drop modes above (Hz)")
        damping: Literal["file", "material"] = "file"
        rate: PositiveFloat | None = Field(default=None, description="internal step rate (Hz)")
        gain: float = 1.0

    def _midsurface(self, config: Config, context: ShaderContext) -> trimesh.Trimesh:
        if getattr(self, "_mid", None) is None:
            file, key = context.scene_file, context.key
            self._mid, _ = mesh_for_key(file, f"{key}.midsurface", config.midsurface, context.scene_dir,
                                        config.midsurface_scale, "give a triangle mesh file relative to the scene file")
        return self._mid

    def _body_properties(self, config: Config, context: ShaderContext
                         ) -> tuple[float, float, np.ndarray, np.ndarray]:
        file, key = context.scene_file, context.key
        mid = self._midsurface(config, context)
        mass, center, inertia = shell_mass_properties(mid, self.material.density, config.thickness)
        if config.radius is None and config.other_radius is None:
            bare = [i for i, imp in enumerate(config.impacts) if imp.duration is None and imp.other_radius is None]
            if bare or config.impacts_file is not None:
                where = f"{key}.impacts[{bare[0]}]" if bare else f"{key}.impacts_file"
                raise SceneError(file, where, "a thin shell is locally flat: the Hertz contact time needs the "
                                 "striker's radius", "give other_radius (e.g. 0.007 for a stick tip), the shell's "
                                 "radius, or a duration")
        # volume only sets the default local radius of the object: flat (infinite) for a shell
        return mass, np.inf, center, inertia

    def _load_modes(self, config: Config, context: ShaderContext) -> ModeSet:
        file, key = context.scene_file, context.key
        mid = self._midsurface(config, context)
        if config.modes is None:
            from wavesolve.shell_fem import shell_modal_analysis

            try:
                modes = shell_modal_analysis(mid, self.material, config.thickness,
                                             max_frequency=config.max_frequency or DEFAULT_MAX_FREQUENCY)
            except ValueError as exc:
                raise SceneError(file, f"{key}.midsurface", f"shell modal analysis failed: {exc}",
                                 "check the mid-surface mesh (no degenerate triangles), or give a modes file") from None
        else:
            path = context.scene_dir / config.modes
            modes = read_named_file(file, f"{key}.modes", path, "modes file", ModeSet.load,
                                    "write it with `wavesolve modal --shell`",
                                    "make it with `wavesolve modal MIDSURFACE --shell --thickness T ...`, or omit modes")
            if modes.shapes.shape[0] != len(mid.vertices):
                raise SceneError(file, f"{key}.modes", f"modes file '{path}' has shapes for {modes.shapes.shape[0]} "
                                 f"vertices but the mid-surface has {len(mid.vertices)}",
                                 "compute the modes of this mid-surface (same file and scale)")
        closed = np.asarray(self.mesh.vertices, dtype=np.float64)
        d2, _, _ = igl.point_mesh_squared_distance(closed, np.asarray(mid.vertices, dtype=np.float64),
                                                   np.asarray(mid.faces, dtype=np.int64))
        dist = float(np.sqrt(d2.max()))
        limit = MAX_WRAP_DISTANCE * float(np.linalg.norm(np.ptp(mid.vertices, axis=0)))
        if dist > limit:
            raise SceneError(file, f"{key}.midsurface", f"the object's mesh lies up to {dist:.4g} m from the "
                             f"mid-surface (limit {limit:.3g} m): they do not match",
                             "use the closed mesh made from this mid-surface (same frame and scale)")
        return ModeSet(modes.frequencies, modes.damping, transfer_shapes(mid, modes.shapes, closed), modes.attrs)
