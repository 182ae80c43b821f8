"""Physics setup files (TOML): the objects to drop, throw or spin, and what the scene gets.

A setup is validated in full (keys, types, meshes, materials, placement) before the engine
starts; every problem is a :class:`~wavesolve.errors.SceneError` naming the file, the key and the
fix. The format is documented in the README ("Physics engine").
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import trimesh
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat

from ..constants import MIN_IMPACT_SPEED, PHYSICS_EXPORT_RATE, PHYSICS_TIME_STEP
from ..contact import effective_mass, mass_properties
from ..errors import SceneError, SceneErrors
from ..materials import Material, parse_material
from ..meshes import Box, Icosphere, mesh_for_key, quaternion_matrix
from ..validation import validate_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EngineConfig(_Strict):
    duration: PositiveFloat = Field(description="simulated time (s)")
    time_step: PositiveFloat = Field(default=PHYSICS_TIME_STEP, le=0.01, description="engine step (s), ≤ 0.01")
    export_rate: PositiveFloat = Field(default=PHYSICS_EXPORT_RATE, description="motion frames per second (Hz)")
    gravity: Vec3 = Field(default_factory=lambda: [0.0, 0.0, -9.81], description="[x, y, z] in m/s²")
    min_impact_speed: NonNegativeFloat = Field(default=MIN_IMPACT_SPEED,
                                               description="slowest contact kept as an impact (m/s)")
    solver_iterations: int = Field(default=50, ge=1, le=10000, description="constraint solver iterations")


#: what ``roughness`` means, for the setup's keys
ROUGHNESS_HELP = ("RMS surface roughness (m) over wavelengths 20 µm – 20 mm: rolling and sliding on it make a "
                  "roughness force (wavesolve.rolling); 0: smooth, silent")


class GroundPlaneConfig(_Strict):
    height: float = Field(default=0.0, description="z of the plane (m)")
    material: str | dict[str, Any] = Field(default="oak", description="a material name or table (Hertz contact)")
    restitution: float = Field(default=0.5, ge=0.0, le=1.0, description="coefficient of restitution in [0, 1]")
    friction: NonNegativeFloat = Field(default=0.5, description="Coulomb friction coefficient")
    roughness: NonNegativeFloat = Field(default=0.0, description=ROUGHNESS_HELP)


class BodyConfig(_Strict):
    name: str = Field(min_length=1)
    mesh: str | dict[str, Any] = Field(description="a mesh file or a primitive table")
    scale: PositiveFloat = 1.0
    material: str | dict[str, Any] = Field(description="a material name or table (density, E, ν, damping)")
    position: Vec3 = Field(description="[x, y, z] of the object frame's origin at t = 0 (m)")
    orientation: Annotated[list[float], Field(min_length=4, max_length=4)] = Field(
        default_factory=lambda: [1.0, 0.0, 0.0, 0.0], description="quaternion w, x, y, z")
    velocity: Vec3 = Field(default_factory=lambda: [0.0, 0.0, 0.0],
                           description="[vx, vy, vz] of the centre of mass at t = 0 (m/s)")
    angular_velocity: Vec3 = Field(default_factory=lambda: [0.0, 0.0, 0.0],
                                   description="[wx, wy, wz] at t = 0 (rad/s, world frame)")
    restitution: float = Field(default=0.5, ge=0.0, le=1.0, description="coefficient of restitution in [0, 1]")
    friction: NonNegativeFloat = Field(default=0.5, description="Coulomb friction coefficient")
    rolling_friction: NonNegativeFloat = Field(default=0.0, description="rolling friction (m)")
    spinning_friction: NonNegativeFloat = Field(default=0.0, description="spinning friction (m)")
    roughness: NonNegativeFloat = Field(default=0.0, description=ROUGHNESS_HELP)
    modal: bool = Field(default=True, description="true to add the modal shader (false: clicks only)")
    collision: Literal["hull", "parts"] = Field(
        default="hull", description='"hull": collide as the convex hull; "parts": as convex parts of the mesh, '
        "for a concave body something falls into, such as a bowl (CoACD)")


class ListenerTable(_Strict):
    name: str = Field(min_length=1)
    position: Vec3 = Field(description="[x, y, z] in metres")


class SoundConfig(_Strict):
    cell_size: PositiveFloat = Field(default=0.005, description="grid spacing h of the scene (m)")
    sample_rate: PositiveFloat = 44100.0
    start: NonNegativeFloat = Field(default=0.0, description="physics time (s) at which the scene starts")
    duration: PositiveFloat | None = Field(default=None, description="scene duration (s); default the rest of the "
                                           "physics run after start")
    precision: str = Field(default="float32", pattern="^float(32|64)$", description="float32 or float64")
    max_frequency: PositiveFloat | None = Field(default=None, description="highest mode kept (Hz); default c/(10h)")
    modal_resolution: PositiveFloat | None = Field(default=None, description="FEM element size (m)")
    margin: PositiveFloat = Field(default=0.03, description="air around the objects' motion in the box (m)")
    listeners: list[ListenerTable] = Field(default_factory=list, description="default: one above the objects")


class SetupConfig(_Strict):
    physics: EngineConfig
    ground: GroundPlaneConfig | None = None
    objects: list[BodyConfig] = Field(min_length=1)
    sound: SoundConfig = Field(default_factory=SoundConfig)


@dataclass
class Body:
    """A body of the setup with its mesh (object frame, m) and mass properties.

    ``center`` (3,) is the centre of mass and ``principal`` (3, 3) the principal axes (columns,
    object frame, det +1) with ``moments`` (3,) about them (kg·m²); the engine simulates the body
    in that principal frame. ``shape`` is 'sphere', 'box', 'hull' (convex hull of the mesh) or
    'parts' (convex parts of the mesh: ``wavesolve.physics.collision``).
    """

    config: BodyConfig
    mesh: trimesh.Trimesh
    material: Material
    mass: float
    volume: float
    center: np.ndarray
    inertia: np.ndarray
    principal: np.ndarray
    moments: np.ndarray
    shape: str
    mesh_file: Path | None

    @property
    def name(self) -> str:
        return self.config.name

    def object_pose(self, com_position: np.ndarray, com_rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object-frame pose (origins (..., 3), rotations (..., 3, 3)) from principal-frame poses."""
        R = np.asarray(com_rotation) @ self.principal.T
        return np.asarray(com_position) - R @ self.center, R

    def com_pose(self, position: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Principal-frame pose (centre of mass (3,), rotation (3, 3)) from the object-frame pose."""
        return np.asarray(position) + rotation @ self.center, rotation @ self.principal

    def effective_mass(self, point: np.ndarray, direction: np.ndarray) -> float:
        """Mass (kg) felt along ``direction`` at ``point`` (object frame), rotation included
        (``contact.effective_mass``)."""
        return effective_mass(self.mass, self.center, np.linalg.inv(self.inertia), point, direction)


@dataclass
class PhysicsSetup:
    """A validated setup: the file, its tables, its bodies and ground material (None: no plane)."""

    path: Path
    config: SetupConfig
    bodies: list[Body]
    ground_material: Material | None

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bodies]


def load_setup(path: str | Path) -> PhysicsSetup:
    """Read and fully validate a physics setup file. Raises SceneError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SceneError(str(path), "", "setup file does not exist", "check the path")
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(file, "", f"not valid TOML: {exc}", "fix the syntax at the line shown") from None
    config: SetupConfig = validate_model(SetupConfig, raw, file)
    errors: list[SceneError] = []
    ground = None
    if config.ground is not None:
        try:
            ground = parse_material(config.ground.material, file, "ground.material")
        except SceneError as exc:
            errors.append(exc)
    seen: dict[str, int] = {}
    bodies: list[Body] = []
    for i, body in enumerate(config.objects):
        key = f"objects[{i}]"
        if body.name in seen:
            errors.append(SceneError(file, f"{key}.name", f"name '{body.name}' is already used by "
                                     f"objects[{seen[body.name]}]", "give every object a unique name"))
        seen.setdefault(body.name, i)
        try:
            bodies.append(_build_body(body, key, file, path.parent, config))
        except SceneErrors as exc:
            errors.extend(exc.errors)
        except SceneError as exc:
            errors.append(exc)
    sound = config.sound
    if sound.margin < 4 * sound.cell_size:
        errors.append(SceneError(file, "sound.margin", f"margin {sound.margin:g} m is less than 4 cells "
                                 f"({4 * sound.cell_size:g} m): no room for the clearance and the listener",
                                 f"set margin ≥ {4 * sound.cell_size:g}"))
    rate = 1.0 / config.physics.time_step
    if config.physics.export_rate > rate * (1 + 1e-9):
        errors.append(SceneError(file, "physics.export_rate", f"export rate {config.physics.export_rate:g} Hz "
                                 f"is above the engine's step rate {rate:g} Hz",
                                 f"give export_rate ≤ {rate:g} (every step) or a smaller time_step"))
    if sound.start >= config.physics.duration:
        errors.append(SceneError(file, "sound.start", f"start {sound.start:g} s is not before the end of the physics "
                                 f"run ({config.physics.duration:g} s)", "give a start inside the run"))
    names = [lis.name for lis in sound.listeners]
    for j, name in enumerate(names):
        if name in names[:j]:
            errors.append(SceneError(file, f"sound.listeners[{j}].name", f"listener name '{name}' is repeated",
                                     "give every listener a unique name"))
    if errors:
        raise SceneErrors(errors)
    return PhysicsSetup(path=path, config=config, bodies=bodies, ground_material=ground)


def _build_body(body: BodyConfig, key: str, file: str, base: Path, config: SetupConfig) -> Body:
    material = parse_material(body.material, file, f"{key}.material")
    mesh, spec = mesh_for_key(file, f"{key}.mesh", body.mesh, base, body.scale,
                              'give a path relative to the setup file, or a primitive such as '
                              '{ primitive = "icosphere", radius = 0.02 }')
    mesh_file = base / body.mesh if spec is None else None
    shape = "sphere" if isinstance(spec, Icosphere) else "box" if isinstance(spec, Box) else body.collision
    if body.collision == "parts" and shape != "parts":
        raise SceneError(file, f"{key}.collision", f"a {shape} primitive is convex and collides as itself",
                         'remove collision = "parts" (it is for concave meshes, such as a bowl)')
    if not mesh.is_watertight:
        raise SceneError(file, f"{key}.mesh", "mesh is not closed (watertight): its mass and modes need a solid",
                         "close the mesh (e.g. trimesh's fill_holes) or use a primitive")
    try:
        mass, volume, center, inertia = mass_properties(mesh, material.density)
    except ValueError as exc:
        raise SceneError(file, f"{key}.mesh", str(exc), "use a closed mesh with outward normals") from None
    moments, axes = np.linalg.eigh(inertia)
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]
    if shape in ("sphere", "box"):
        # symmetric primitives: keep the object's axes (eigh may rotate degenerate moments at will)
        axes, moments = np.eye(3), np.diag(inertia).copy()
    q = np.asarray(body.orientation, float)
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-12:
        raise SceneError(file, f"{key}.orientation", "quaternion has zero length",
                         "give a unit quaternion [w, x, y, z], e.g. [1.0, 0.0, 0.0, 0.0]")
    if config.ground is not None:
        low = float((np.asarray(mesh.vertices) @ quaternion_matrix(q).T)[:, 2].min() + body.position[2])
        if low < config.ground.height - 1e-9:
            raise SceneError(file, f"{key}.position", f"object '{body.name}' starts below the ground plane "
                             f"(its lowest point is at z = {low:.4g} m, the plane at {config.ground.height:g} m)",
                             f"raise position's z by at least {config.ground.height - low:.4g} m")
    return Body(config=body, mesh=mesh, material=material, mass=mass, volume=volume, center=center,
                inertia=inertia, principal=axes, moments=moments, shape=shape, mesh_file=mesh_file)


def default_max_frequency(cell_size: float, sound_speed: float) -> float:
    """Highest frequency a grid of spacing h resolves with ≥ 10 points per wavelength (Hz)."""
    return math.floor(sound_speed / (10.0 * cell_size))
