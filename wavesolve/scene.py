"""Scene files (TOML): the validated model of what to simulate.

``load_scene`` checks everything — keys, types, files, meshes, shaders, stability, placement —
before any compute starts, and raises :class:`~wavesolve.errors.SceneError` naming the file, the
key, what was expected and the fix. The format is documented in the README.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from .constants import (AIR_DENSITY, DEFAULT_LAYER_CELLS, FOLLOW_MARGIN_CELLS, MAX_COURANT, MAX_SLICE_TIMES,
                        MIN_CLEARANCE_CELLS, SMALL_OBJECT_CELLS, SOUND_SPEED)
from .errors import SceneError, SceneErrors
from .grid import Z_CELLS_MULTIPLE, Grid
from .meshes import Geometry, mesh_for_key, quaternion_matrix
from .motion import (ConstantVelocity, Deforming, Keyframes, Motion, Oscillate, Spin, Static, VertexTrack,
                     read_keyframes, read_vertex_frames)
from .shading import Shader, ShaderContext, available_shaders, shader_class
from .slices import MovingSliceSpec, SliceSpec, slice_spec
from .validation import did_you_mean, validate_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("wavesolve")

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SimulationConfig(_Strict):
    duration: PositiveFloat = Field(description="simulated time (s)")
    sample_rate: PositiveFloat = Field(default=44100.0, description="output audio rate (Hz)")
    cell_size: PositiveFloat = Field(description="grid spacing h (m)")
    courant: PositiveFloat | None = Field(default=None, description="cΔt/h; default 0.5, at most 1/√3")
    step_rate: PositiveFloat | None = Field(default=None, description="time steps per second (Hz)")
    precision: Literal["float32", "float64"] = "float32"
    boundary_interval: int = Field(default=32, ge=1, le=64,
                                   description="most steps between exact boundary updates of moving rigid "
                                               "objects (fewer for fast ones; 1: every step)")


class MediumConfig(_Strict):
    sound_speed: PositiveFloat = SOUND_SPEED
    density: PositiveFloat = AIR_DENSITY


class DomainConfig(_Strict):
    center: Vec3 = Field(default_factory=lambda: [0.0, 0.0, 0.0], description="[x, y, z] in metres")
    size: PositiveFloat | Vec3 = Field(description="the box edge in metres: one number, or [x, y, z]")
    absorbing_layer: int = Field(default=DEFAULT_LAYER_CELLS, ge=4, le=64, description="cells")


class StaticMotion(_Strict):
    type: Literal["static"]


class ConstantVelocityMotion(_Strict):
    type: Literal["constant_velocity"]
    velocity: Vec3 = Field(description="[vx, vy, vz] in m/s")


class OscillateMotion(_Strict):
    type: Literal["oscillate"]
    amplitude: Vec3 = Field(description="[x, y, z] displacement amplitude in metres")
    frequency: PositiveFloat = Field(description="Hz")
    phase: float = Field(default=0.0, description="radians")
    ramp: float = Field(default=0.0, ge=0.0, description="seconds of smooth fade-in (C² quintic)")


class SpinMotion(_Strict):
    type: Literal["spin"]
    axis: Vec3 = Field(description="[x, y, z] rotation axis (world frame) through the object origin")
    rate: float = Field(description="revolutions per second (sign: right-hand rule)")


class KeyframeMotion(_Strict):
    type: Literal["keyframes"]
    file: str = Field(description="CSV (time,x,y,z,qw,qx,qy,qz) or HDF5 (time, position, orientation)")


class DeformingMotion(_Strict):
    type: Literal["deforming"]
    file: str = Field(description="HDF5 with datasets time (n,) and vertices (n, V, 3), object frame")


MOTIONS: dict[str, type[_Strict]] = {
    "static": StaticMotion, "constant_velocity": ConstantVelocityMotion, "oscillate": OscillateMotion,
    "spin": SpinMotion, "keyframes": KeyframeMotion, "deforming": DeformingMotion,
}


class ObjectDomainConfig(_Strict):
    follow: bool = Field(default=False, description="true: the object gets its own box that follows it")
    margin: PositiveFloat | None = Field(default=None, description="air (m) between the object's enclosing "
                                         "sphere and the box's absorbing layer; default 12 cells")


#: A name of an object, listener or slice: it names a group in the result file, so no '/'.
Name = Annotated[str, Field(min_length=1, pattern=r"^[^/]+$",
                            description="a name without '/' (it names a group in the result file)")]


class ObjectConfig(_Strict):
    name: Name
    mesh: str | dict[str, Any]
    scale: PositiveFloat = 1.0
    position: Vec3 = Field(default_factory=lambda: [0.0, 0.0, 0.0], description="[x, y, z] in metres")
    orientation: Annotated[list[float], Field(min_length=4, max_length=4)] = Field(
        default_factory=lambda: [1.0, 0.0, 0.0, 0.0], description="quaternion w, x, y, z")
    shaders: list[dict[str, Any]] = Field(default_factory=list)
    motion: dict[str, Any] = Field(default_factory=lambda: {"type": "static"},
                                   description="a motion table with type = static, constant_velocity, "
                                               "oscillate, spin, keyframes or deforming")
    domain: ObjectDomainConfig = Field(default_factory=ObjectDomainConfig,
                                       description="[objects.domain]: follow = true gives a travelling box")


class ListenerConfig(_Strict):
    name: Name
    position: Vec3 = Field(description="[x, y, z] in metres")


class GroundConfig(_Strict):
    height: float = Field(description="z of the rigid floor (m); the box's bottom face lies on it")


class SliceConfig(_Strict):
    name: Name
    axis: Literal["x", "y", "z"] = Field(description="the plane's normal")
    position: float = Field(description="the plane's coordinate along axis (m); the nearest cell plane is taken. "
                                        "With object: measured from the point its box follows")
    object: Name | None = Field(default=None, description="a travelling object (follow = true): the slice is a "
                                                          "plane of its box and moves with it")
    times: list[float] = Field(min_length=1, max_length=MAX_SLICE_TIMES,
                               description=f"snapshot times (s), each within [0, duration], at most {MAX_SLICE_TIMES} "
                                           "(another [[slices]] table gives more)")


class OutputConfig(_Strict):
    hdf5: str | None = None
    wav: str | None = None


class SceneConfig(_Strict):
    simulation: SimulationConfig
    medium: MediumConfig = Field(default_factory=MediumConfig)
    domain: DomainConfig
    objects: list[ObjectConfig] = Field(default_factory=list)
    listeners: list[ListenerConfig] = Field(min_length=1)
    ground: GroundConfig | None = None
    slices: list[SliceConfig] = Field(default_factory=list)
    output: OutputConfig = Field(default_factory=OutputConfig)


@dataclass
class SceneObject:
    """An object of the scene: geometry (mesh + rest pose), motion, and the shaders on its surface."""

    name: str
    geometry: Geometry
    shaders: list[Shader]
    motion: Motion
    follow_margin: float | None = None   # m; None: the object is simulated in the fixed [domain] box
    bounds: np.ndarray | None = None     # (2, 3) world bounds (m) over the run's motion

    @property
    def balanced(self) -> bool:
        """Whether the object has shaders and each is ``rigid`` or ``knows_volume``: its net face flux
        is then held at their net volume acceleration (wavesolve/flux_balance.py)."""
        return bool(self.shaders) and all(s.rigid or s.knows_volume for s in self.shaders)

    @property
    def volume_source(self) -> bool:
        """Whether the object is ``balanced`` and a shader of it is not rigid: its net volume
        acceleration Q̇ may be non-zero and the balance reads it from the boundary input."""
        return self.balanced and not all(s.rigid for s in self.shaders)


@dataclass
class Listener:
    """A listener; ``far`` when it is not inside the box and is estimated by ``wavesolve.farfield``."""

    name: str
    position: np.ndarray  # (3,) world, m
    far: bool = False


@dataclass
class Scene:
    """A validated scene, ready to plan and simulate.

    Attributes:
        path: the scene file; text: its contents (stored in results).
        config: the validated tables; grid: the grid they define.
        output_hdf5, output_wav: result paths from ``[output]``, resolved against the scene file.
        objects: the objects simulated in the fixed [domain] box.
        travellers: objects with ``[objects.domain] follow = true``, each simulated in its own box
            that follows it (``wavesolve.travelling``).
        slices: the pressure slices to record (``[[slices]]``, ``wavesolve.slices``).
    """

    path: Path
    text: str
    config: SceneConfig
    grid: Grid
    objects: list[SceneObject] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    output_hdf5: Path | None = None
    output_wav: Path | None = None
    travellers: list[SceneObject] = field(default_factory=list)
    slices: list[SliceSpec | MovingSliceSpec] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.config.simulation.duration

    def config_index(self, obj: SceneObject) -> int:
        """The index of ``obj`` among the scene file's ``[[objects]]`` (fixed-box and travelling
        alike), for error keys such as ``objects[2].mesh``."""
        names = [o.name for o in self.config.objects]
        return names.index(obj.name) if obj.name in names else 0

    @property
    def sample_rate(self) -> float:
        return self.config.simulation.sample_rate

    @property
    def density(self) -> float:
        return self.config.medium.density

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config.simulation.precision)


def load_scene(path: str | Path) -> Scene:
    """Read and fully validate a scene file. Raises SceneError on any problem."""
    path = Path(path)
    if path.is_dir():
        raise SceneError(str(path), "", "is a directory, not a scene file", "give the path of a .toml scene file")
    if not path.is_file():
        raise SceneError(str(path), "", "scene file does not exist", "check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise SceneError(str(path), "", f"not a UTF-8 text file (byte {exc.start}, line {line})",
                         "save the scene as UTF-8 TOML text") from None
    except OSError as exc:
        raise SceneError(str(path), "", f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    return parse_scene(text, path)


def _warn_small_objects(objects: list[SceneObject], h: float, file: str) -> None:
    """Log a warning for each sounding object whose largest extent is under SMALL_OBJECT_CELLS
    cells of size h (m) and whose net face flux is not balanced (a shader that is neither ``rigid``
    nor ``knows_volume``): its sound below about 1 kHz is not reliable there."""
    for i, obj in enumerate(objects):
        extent = float(np.max(obj.geometry.mesh.extents)) if obj.shaders and not obj.balanced else np.inf
        if extent < SMALL_OBJECT_CELLS * h * (1 - 1e-9):
            log.warning("%s: [objects[%d].mesh] object '%s' is %.1f cells across at h = %g m: below about "
                        "1 kHz its sound can be off by a factor of 1.5 or more (README, \"Volume balance of "
                        "sounding objects\": a shader of it does not know its net volume); a cell_size of %.3g m or "
                        "less resolves it by %d cells",
                        file, i, obj.name, extent / h, h, extent / SMALL_OBJECT_CELLS, SMALL_OBJECT_CELLS)


def parse_scene(text: str, path: str | Path) -> Scene:
    """Validate scene ``text``; ``path`` names it in errors and anchors relative paths."""
    path = Path(path)
    file = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(file, "", f"not valid TOML: {exc}", "fix the syntax at the line shown") from None
    config: SceneConfig = validate_model(SceneConfig, raw, file)
    base = path.parent
    errors: list[SceneError] = []

    sim = config.simulation
    if sim.courant is not None and sim.step_rate is not None:
        errors.append(SceneError(file, "simulation.step_rate", "give either courant or step_rate, not both",
                                 "remove one of them"))
    c, h = config.medium.sound_speed, sim.cell_size
    courant = sim.courant if sim.step_rate is None else c / (sim.step_rate * h)
    if courant is not None and courant > MAX_COURANT * (1 + 1e-12):
        key = "simulation.courant" if sim.step_rate is None else "simulation.step_rate"
        errors.append(SceneError(
            file, key, f"Courant number cΔt/h = {courant:.4f} exceeds the stability limit 1/√3 = {MAX_COURANT:.4f}",
            f"use courant ≤ {MAX_COURANT:.4f} (0.5 is safe), or step_rate ≥ {c / (MAX_COURANT * h):.1f} Hz"))
    size = np.broadcast_to(np.asarray(config.domain.size, dtype=np.float64), (3,))
    ground = config.ground.height if config.ground is not None else None
    if ground is not None:
        bottom = config.domain.center[2] - size[2] / 2
        if abs(bottom - ground) > 1e-9:
            errors.append(SceneError(
                file, "domain.center", f"with a ground at z = {ground:g} m the box must stand on it, but its bottom "
                f"face is at z = {bottom:g} m", f"set domain.center's z to {ground + size[2] / 2:g} (ground height + "
                "half the box's z size)"))
    grid = Grid.build(np.asarray(config.domain.center), size, h, c, config.domain.absorbing_layer,
                      courant=sim.courant if sim.step_rate is None else None,
                      step_rate=sim.step_rate, ground_height=ground, z_multiple=Z_CELLS_MULTIPLE)
    if sim.sample_rate / 2 > grid.step_rate / 2:
        errors.append(SceneError(file, "simulation.sample_rate",
                                 f"output rate {sim.sample_rate:g} Hz is above the step rate {grid.step_rate:.1f} Hz",
                                 "lower sample_rate or refine cell_size"))
    bounds = grid.interior_bounds()

    def names_unique(items: list, table: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.name in seen:
                errors.append(SceneError(file, f"{table}[{i}].name",
                                         f"name '{item.name}' is already used by {table}[{seen[item.name]}]",
                                         "give every entry a unique name"))
            seen.setdefault(item.name, i)

    names_unique(config.objects, "objects")
    names_unique(config.listeners, "listeners")
    names_unique(config.slices, "slices")

    objects: list[SceneObject] = []
    for i, obj in enumerate(config.objects):
        key = f"objects[{i}]"
        try:
            objects.append(_build_object(obj, key, file, base, config, grid))
        except SceneErrors as exc:
            errors.extend(exc.errors)
        except SceneError as exc:
            errors.append(exc)

    listeners = []
    for i, lis in enumerate(config.listeners):
        key = f"listeners[{i}].position"
        pos = np.asarray(lis.position, dtype=np.float64)
        lower = bounds[0] + h
        if grid.ground:
            lower[2] = bounds[0, 2] + 0.5 * h   # a listener may sit close to the floor
        if np.any(pos < lower) or np.any(pos > bounds[1] - h):
            if grid.ground and pos[2] < bounds[0, 2]:
                errors.append(SceneError(
                    file, key, f"listener '{lis.name}' at {lis.position} is below the ground (z = "
                    f"{bounds[0, 2]:g} m), which is rigid and fills everything under it",
                    f"raise the listener to z ≥ {bounds[0, 2]:g} m"))
                continue
            if grid.ground and np.all(pos[:2] >= lower[:2]) and np.all(pos <= bounds[1] - h):
                errors.append(SceneError(
                    file, key, f"listener '{lis.name}' at {lis.position} is inside the box {format_box(bounds)} "
                    f"but closer than half a cell ({0.5 * h:.3g} m) to the floor",
                    f"raise it to z ≥ {lower[2]:.4g} m"))
                continue
            if not any(o.shaders for o in objects):  # fixed-box and travelling objects alike
                errors.append(SceneError(
                    file, key, f"listener '{lis.name}' at {lis.position} is outside the simulated box "
                    f"{format_box(bounds)}, and a far-field listener needs an object with shaders as its source",
                    "enlarge domain.size or move the listener at least one cell inside the box"))
            else:
                listeners.append(Listener(lis.name, pos, far=True))  # far field (wavesolve.farfield)
            continue
        for obj in objects:
            t_inside = _first_time_inside(obj, pos, config.simulation.duration, 0.5 * h)
            if t_inside is not None:
                errors.append(SceneError(
                    file, key, f"listener '{lis.name}' is inside or on object '{obj.name}' at t = {t_inside:.4g} s",
                    "move the listener into the air, at least half a cell from the surface at all times"))
        listeners.append(Listener(lis.name, pos))

    slices = _build_slices(config, grid, file, errors)

    if errors:
        raise SceneErrors(errors)
    _warn_small_objects(objects, h, file)
    out = config.output
    scene = Scene(path=path, text=text, config=config, grid=grid,
                  objects=[o for o in objects if o.follow_margin is None], listeners=listeners,
                  output_hdf5=base / out.hdf5 if out.hdf5 else None,
                  output_wav=base / out.wav if out.wav else None,
                  travellers=[o for o in objects if o.follow_margin is not None], slices=slices)
    if scene.travellers:
        from .travelling import check_travellers  # late import: travelling reads scenes

        check_travellers(scene)  # raises SceneError if a box has no room for its rays or a listener is too close
    if any(lis.far for lis in listeners):
        from .farfield import layout  # late import: farfield reads scenes

        layout(scene)  # raises SceneError if a far-field ray has no room in the box
    return scene


def _build_slices(config: SceneConfig, grid: Grid, file: str,
                  errors: list[SceneError]) -> list[SliceSpec | MovingSliceSpec]:
    """The ``[[slices]]`` of a scene; a problem is appended to ``errors``."""
    specs = []
    bounds = grid.interior_bounds()
    duration = config.simulation.duration
    followers = [o.name for o in config.objects if o.domain.follow]
    for i, sl in enumerate(config.slices):
        a = "xyz".index(sl.axis)
        lo, hi = bounds[0, a], bounds[1, a]
        bad = False
        if sl.object is None and followers:
            errors.append(SceneError(
                file, f"slices[{i}]", f"slice '{sl.name}' shows the fixed box's field, and object(s) "
                f"{', '.join(followers)} travel in boxes of their own (objects.domain.follow = true), whose sound "
                "it would not show", f"give object = \"{followers[0]}\" to slice that object's box (it moves with "
                "it), or set follow = false on those objects"))
            bad = True
        if sl.object is not None and sl.object not in followers:
            known = [o.name for o in config.objects]
            errors.append(SceneError(
                file, f"slices[{i}].object", f"slice '{sl.name}' names object '{sl.object}', which "
                + ("does not travel in a box of its own" if sl.object in known else "is not in the scene"),
                "name an object with [objects.domain] follow = true" + (f" ({', '.join(followers)})" if followers
                else "") + ", or remove object to slice the fixed box"))
            bad = True
        if sl.object is None and not lo <= sl.position <= hi:
            errors.append(SceneError(
                file, f"slices[{i}].position", f"slice '{sl.name}' at {sl.axis} = {sl.position:g} m is outside the "
                f"box, which spans {sl.axis} = {lo:g} … {hi:g} m", "give a position inside that range"))
            bad = True
        late = [t for t in sl.times if not 0.0 <= t <= duration]
        if late:
            errors.append(SceneError(
                file, f"slices[{i}].times", f"slice '{sl.name}' asks for time(s) {', '.join(f'{t:g}' for t in late)} s, "
                f"outside the run [0, {duration:g}] s", "give times between 0 and simulation.duration"))
            bad = True
        if not bad and sl.object is not None:
            specs.append(MovingSliceSpec(name=sl.name, axis=a, offset=sl.position,
                                         steps=tuple(round(t / grid.dt) for t in sl.times), follows=sl.object))
        elif not bad:
            position = min(max(sl.position, lo + grid.h / 2), hi - grid.h / 2)   # a face between cells: the cell inside
            specs.append(slice_spec(grid, sl.name, sl.axis, position, sl.times))
    return specs


def placement_clearance(grid: Grid) -> np.ndarray:
    """(2, 3) air (m) an object keeps from the interior's low and high faces: MIN_CLEARANCE_CELLS
    cells from the absorbing layer, none from a ground (objects may rest on it)."""
    clearance = np.full((2, 3), MIN_CLEARANCE_CELLS * grid.h)
    if grid.ground:
        clearance[0, 2] = 0.0
    return clearance


def misplaced(world_bounds: np.ndarray, grid: Grid) -> bool:
    """Whether an object with ``world_bounds`` (2, 3) m leaves ``grid``'s interior or comes closer
    to its absorbing layer than :func:`placement_clearance`."""
    bounds, clearance = grid.interior_bounds(), placement_clearance(grid)
    return bool(np.any(world_bounds[0] < bounds[0] + clearance[0] - 1e-9) or
                np.any(world_bounds[1] > bounds[1] - clearance[1]))


def format_box(bounds: np.ndarray) -> str:
    """A (2, 3) box (m) as "[x0…x1, y0…y1, z0…z1] m"."""
    lo, hi = bounds
    return "[" + ", ".join(f"{a:.3g}…{b:.3g}" for a, b in zip(lo, hi)) + "] m"


def _build_object(obj: ObjectConfig, key: str, file: str, base: Path, config: SceneConfig,
                  grid: Grid) -> SceneObject:
    mesh, _ = mesh_for_key(file, f"{key}.mesh", obj.mesh, base, obj.scale,
                           "give a path relative to the scene file, or a primitive such as "
                           '{ primitive = "icosphere", radius = 0.05 }')
    if not mesh.is_watertight:
        log.warning("%s: [%s.mesh] mesh is not watertight; inside/outside uses winding numbers", file, key)
    q = np.asarray(obj.orientation, dtype=np.float64)
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-12:
        raise SceneError(file, f"{key}.orientation", "quaternion has zero length",
                         "give a unit quaternion [w, x, y, z], e.g. [1.0, 0.0, 0.0, 0.0]")
    geometry = Geometry(mesh=mesh, position=np.asarray(obj.position, dtype=np.float64),
                        rotation=quaternion_matrix(q))
    motion = _build_motion(obj, key, file, base, geometry)
    bounds_over_time = []
    times = _sample_times(motion, config.simulation.duration)
    motion.prefetch(times)                          # one vectorised call for keyframed states
    for t in times:
        if motion.deforms:
            geometry.set_vertices(motion.track.vertices(t))
        bounds_over_time.append(geometry.world_bounds(motion.state(t)))
    if motion.deforms:
        geometry.set_vertices(motion.track.vertices(0.0))
    wb = np.stack([np.min([b[0] for b in bounds_over_time], axis=0), np.max([b[1] for b in bounds_over_time], axis=0)])
    follow = obj.domain.follow
    if follow and config.ground is not None and wb[0, 2] < config.ground.height - 1e-9:
        raise SceneError(file, f"{key}.position",
                         f"object '{obj.name}' (bounds {format_box(wb)} over its motion) goes below the ground "
                         f"(z = {config.ground.height:g} m)", "raise its path so that it stays on or above the ground")
    if not follow and obj.domain.margin is not None:
        raise SceneError(file, f"{key}.domain.margin", "margin is only used by a box that follows its object",
                         "remove it, or set follow = true")
    if not follow and misplaced(wb, grid):
        bounds, clearance = grid.interior_bounds(), placement_clearance(grid)
        need = 2 * np.maximum(np.abs(wb[0] - np.asarray(config.domain.center)),
                              np.abs(wb[1] - np.asarray(config.domain.center))) + 2 * clearance[1]
        need = np.maximum(need, bounds[1] - bounds[0])       # never smaller than the box is
        raise SceneError(file, f"{key}.position",
                         f"object '{obj.name}' (bounds {format_box(wb)} over its motion) is outside the simulated box, "
                         f"below the ground, or closer than {clearance[1, 0]:.3g} m to its absorbing layer "
                         f"(box {format_box(bounds)})",
                         "move the object or enlarge domain.size to at least "
                         f"[{need[0]:.3g}, {need[1]:.3g}, {need[2]:.3g}] m")
    shaders: list[Shader] = []
    registry = available_shaders()
    for j, table in enumerate(obj.shaders):
        skey = f"{key}.shaders[{j}]"
        kind = table.get("type")
        if kind not in registry:
            guess = did_you_mean(str(kind), registry) if kind is not None else None
            raise SceneError(file, f"{skey}.type", "missing shader type" if kind is None else
                             f"unknown shader '{kind}'", f"did you mean '{guess}'?" if guess else
                             "installed shaders: " + ", ".join(sorted(registry)))
        cls = shader_class(kind)
        shader_config = validate_model(cls.Config, table, file, (skey,))
        context = ShaderContext(scene_file=file, scene_dir=base, key=skey, object_name=obj.name,
                                density=config.medium.density, sound_speed=config.medium.sound_speed,
                                duration=config.simulation.duration, mesh=mesh)
        shaders.append(cls(shader_config, context))
    margin = None
    if follow:
        margin = obj.domain.margin if obj.domain.margin is not None else FOLLOW_MARGIN_CELLS * config.simulation.cell_size
    return SceneObject(name=obj.name, geometry=geometry, shaders=shaders, motion=motion, follow_margin=margin,
                       bounds=wb)


def _first_time_inside(obj: SceneObject, point: np.ndarray, duration: float, clearance: float) -> float | None:
    """First sampled time at which ``point`` is within ``clearance`` of the object or inside it."""
    times = _sample_times(obj.motion, duration, count=20 if obj.motion.deforms else 200)
    geom = obj.geometry
    if obj.motion.deforms:
        try:
            for t in times:
                geom.set_vertices(obj.motion.track.vertices(t))
                if geom.signed_distance(point[None], obj.motion.state(t))[0][0] < clearance:
                    return float(t)
            return None
        finally:
            geom.set_vertices(obj.motion.track.vertices(0.0))
    obj.motion.prefetch(times)
    local = np.array([geom.to_local(point[None], obj.motion.state(t))[0] for t in times])
    near = np.flatnonzero(geom.signed_distance_local(local)[0] < clearance)
    return float(times[near[0]]) if len(near) else None


def _sample_times(motion: Motion, duration: float, count: int = 200) -> np.ndarray:
    """Times at which placement checks look at a motion (all of [0, duration] for moving objects)."""
    if not (motion.moves or motion.deforms):
        return np.zeros(1)
    return np.linspace(0.0, duration, count)


def _build_motion(obj: ObjectConfig, key: str, file: str, base: Path, geometry: Geometry) -> Motion:
    mkey = f"{key}.motion"
    kind = obj.motion.get("type")
    if kind not in MOTIONS:
        guess = did_you_mean(str(kind), MOTIONS) if kind is not None else None
        raise SceneError(file, f"{mkey}.type", "missing motion type" if kind is None else f"unknown motion '{kind}'",
                         f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(MOTIONS))
    spec = validate_model(MOTIONS[kind], obj.motion, file, (mkey,))
    x0, R0 = geometry.position, geometry.rotation
    if isinstance(spec, StaticMotion):
        return Static(x0, R0)
    if isinstance(spec, ConstantVelocityMotion):
        return ConstantVelocity(x0, R0, np.asarray(spec.velocity))
    if isinstance(spec, OscillateMotion):
        return Oscillate(x0, R0, np.asarray(spec.amplitude), spec.frequency, spec.phase, spec.ramp)
    if isinstance(spec, SpinMotion):
        if np.linalg.norm(spec.axis) < 1e-12:
            raise SceneError(file, f"{mkey}.axis", "axis has zero length", "give a non-zero vector, e.g. [0.0, 0.0, 1.0]")
        return Spin(x0, R0, np.asarray(spec.axis), spec.rate)
    path = base / spec.file
    if not path.is_file():
        raise SceneError(file, f"{mkey}.file", f"motion file '{path}' does not exist",
                         "give a path relative to the scene file")
    try:
        if isinstance(spec, KeyframeMotion):
            if "position" in obj.model_fields_set or "orientation" in obj.model_fields_set:
                raise ValueError("keyframes give the absolute pose; remove the object's position/orientation keys")
            return Keyframes(*read_keyframes(path))
        times, frames = read_vertex_frames(path, len(geometry.vertices))
        return Deforming(x0, R0, VertexTrack(times, frames))
    except (ValueError, OSError) as exc:
        raise SceneError(file, f"{mkey}.file", f"bad motion file '{path}': {exc}",
                         "fix the file (see the README's motion formats)") from None
