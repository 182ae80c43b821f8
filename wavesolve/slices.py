"""Pressure slices: snapshots of the field on a grid plane at chosen times (``[[slices]]``).

A slice is the plane of cells normal to one axis nearest the scene's ``position``, cut to the
box's interior (the absorbing layer left out), taken at the whole time steps nearest the scene's
``times``. The run hands its field to a :class:`SliceRecorder` at those steps; the pressures are
those of the cells (Pa), with no interpolation. The field is linear in the shaders, so the
slices of the source groups of a run and of the chunks of a time-parallel run add up like their
listener signals do (``wavesolve.chunks``). Which cells are solid is found afterwards from the
objects' geometry at each time (:func:`solid_mask`): a cell is solid where its centre lies
inside an object.

A slice of a travelling object (``object = "<name>"``, a :class:`MovingSliceSpec`) is a plane of
that object's box, which moves with it (wavesolve.travelling): at each snapshot, the box's plane
normal to ``axis`` nearest ``position`` metres from the point the box follows (the object's
centre, or over a ground the point of the floor under it), cut to the box's interior. Where a
snapshot lies is fixed by the scene alone: the box as a run from t = 0 places it then
(``Traveller.grid``). A box started later (a time-parallel chunk) may sit a cell away from
there; its field is read at the same world cells (zero where they fall outside its array), so
the chunks' snapshots still add up cell by cell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    from .scene import Scene

AXES = "xyz"


class _Plane:
    """What both kinds of slice spec share: the plane normal to ``axis``."""

    axis: int

    @property
    def in_plane(self) -> tuple[int, int]:
        """The two axes of the plane, ascending."""
        a, b = (x for x in range(3) if x != self.axis)
        return a, b


@dataclass(frozen=True)
class SliceSpec(_Plane):
    """Where and when one slice is taken.

    Attributes:
        name: the slice's name. axis: 0, 1 or 2 (the plane's normal). index: the plane's cell
        index along ``axis``. steps: (n,) time steps of the snapshots, ascending as given.
        lo, hi: (2,) interior cell ranges [lo, hi) along the other two axes, in order.
    """

    name: str
    axis: int
    index: int
    steps: tuple[int, ...]
    lo: tuple[int, int]
    hi: tuple[int, int]
    follows = None

    def position(self, grid: Grid) -> float:
        """The plane's coordinate along ``axis`` (m): a cell centre."""
        return float(grid.origin[self.axis] + grid.h * self.index)

    @property
    def shape(self) -> tuple[int, int]:
        """Cells of one snapshot (n_a, n_b)."""
        return self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]


@dataclass(frozen=True)
class MovingSliceSpec(_Plane):
    """A slice of a travelling object's box (module docstring).

    Attributes:
        name: the slice's name. axis: 0, 1 or 2 (the plane's normal). offset: the plane's
        coordinate along ``axis`` from the point the box follows (m). steps: (n,) time steps of the
        snapshots. follows: the travelling object's name.
    """

    name: str
    axis: int
    offset: float
    steps: tuple[int, ...]
    follows: str

    def placement(self, trav: Any, scene: "Scene", step: int) -> tuple[Grid, int, tuple[int, int], tuple[int, int]]:
        """Where snapshot step ``step`` lies: the box then (``trav.grid``), the plane's cell index
        along ``axis`` in it, and the interior ranges [lo, hi) along the plane's axes."""
        t = step * scene.grid.dt
        box = trav.grid(scene, t)
        lo, hi = _interior(box)
        point = float(trav.emission_point(t)[self.axis]) + self.offset
        index = int(np.clip(round((point - box.origin[self.axis]) / box.h), lo[self.axis], hi[self.axis] - 1))
        a, b = self.in_plane
        return box, index, (lo[a], lo[b]), (hi[a], hi[b])


def slice_spec(grid: Grid, name: str, axis: str, position: float, times: list[float]) -> SliceSpec:
    """The slice of ``grid`` normal to ``axis`` ('x', 'y' or 'z') nearest ``position`` (m) at the
    steps nearest ``times`` (s). The caller checks that position and times are in range."""
    a = AXES.index(axis)
    index = round((position - grid.origin[a]) / grid.h)
    lo, hi = _interior(grid)
    plane = [x for x in range(3) if x != a]
    return SliceSpec(name=name, axis=a, index=index, steps=tuple(round(t / grid.dt) for t in times),
                     lo=(lo[plane[0]], lo[plane[1]]), hi=(hi[plane[0]], hi[plane[1]]))


def _interior(grid: Grid) -> tuple[list[int], list[int]]:
    """Cell index ranges [lo, hi) of the interior along each axis."""
    return [grid.layer] * 3, [n - grid.layer for n in grid.shape]


class SliceRecorder:
    """Collects the snapshots of a run's slices, summing what it is given at each step.

    ``data[name]`` is (n_times, n_a, n_b) float64 pressure (Pa); a snapshot never taken stays zero
    (a chunk whose run does not reach that time adds nothing to it). The slices of the fixed box
    are recorded from its run; those of travelling object ``trav`` (with ``scene``) from its box's.
    """

    def __init__(self, specs: list, trav: Any = None, scene: "Scene | None" = None) -> None:
        name = trav.obj.name if trav is not None else None
        self.specs = [s for s in specs if s.follows == name]
        self.trav, self.scene = trav, scene
        self.data = {s.name: np.zeros((len(s.steps), *self._shape(s))) for s in self.specs}

    def _shape(self, spec: Any) -> tuple[int, int]:
        """Cells of one snapshot of ``spec`` (n_a, n_b)."""
        if spec.follows is None:
            return spec.shape
        _, _, lo, hi = spec.placement(self.trav, self.scene, 0)
        return hi[0] - lo[0], hi[1] - lo[1]

    def next_step(self, n: int) -> int | None:
        """The first snapshot step at or after step n, or None."""
        due = [k for s in self.specs for k in s.steps if k >= n]
        return min(due) if due else None

    def take(self, sim: Any) -> None:
        """Add the planes of ``sim``'s field pⁿ (any backend) due at its step n."""
        for s in self.specs:
            hits = [i for i, k in enumerate(s.steps) if k == sim.n]
            if not hits:
                continue
            plane = self._moving_plane(s, sim) if s.follows is not None else self._fixed_plane(s, sim)
            for i in hits:
                self.data[s.name][i] += plane

    @staticmethod
    def _fixed_plane(spec: SliceSpec, sim: Any) -> np.ndarray:
        """A fixed-box slice's snapshot: its plane's interior cells of ``sim``'s field."""
        cut: list[Any] = [slice(None)] * 3
        cut[spec.axis] = spec.index
        a, b = spec.in_plane
        cut[a], cut[b] = slice(spec.lo[0], spec.hi[0]), slice(spec.lo[1], spec.hi[1])
        return np.asarray(sim.engine.to_host(sim.p[tuple(cut)]), dtype=np.float64)

    def _moving_plane(self, spec: MovingSliceSpec, sim: Any) -> np.ndarray:
        """A moving slice's snapshot from a box ``sim`` that may sit whole cells away from where the
        snapshot lies: the same world cells, zero outside the box's array."""
        box, index, lo, hi = spec.placement(self.trav, self.scene, sim.n)
        shift = np.rint((np.asarray(box.origin) - np.asarray(sim.grid.origin)) / box.h).astype(int)
        a, b = spec.in_plane
        out = np.zeros((hi[0] - lo[0], hi[1] - lo[1]))
        k = index + shift[spec.axis]
        if not 0 <= k < sim.grid.shape[spec.axis]:
            return out
        cut: list[Any] = [slice(None)] * 3
        cut[spec.axis] = k
        dst = []
        for axis, first, last in ((a, lo[0], hi[0]), (b, lo[1], hi[1])):
            start = max(first + shift[axis], 0)
            stop = min(last + shift[axis], sim.grid.shape[axis])
            cut[axis] = slice(start, stop)
            dst.append(slice(start - first - shift[axis], stop - first - shift[axis]))
        out[tuple(dst)] = np.asarray(sim.engine.to_host(sim.p[tuple(cut)]), dtype=np.float64)
        return out


def run_with_slices(sim: Any, steps: int, recorder: SliceRecorder, progress: bool | None = None) -> np.ndarray:
    """``sim.run(steps)``, stopping at the snapshot steps it reaches (n+1 … n+steps) to hand them
    to ``recorder`` (the caller takes step n's, once, before the first call); returns the probe
    samples (n_probes, steps)."""
    end = sim.n + steps
    out = [np.zeros((len(sim.probes.weights), 0))]
    while sim.n < end:
        due = recorder.next_step(sim.n + 1)
        stop = end if due is None else min(end, due)
        out.append(sim.run(stop - sim.n, progress=progress))
        recorder.take(sim)
    return np.concatenate(out, axis=1)


def add_slices(total: dict[str, np.ndarray], more: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sum slice data by name (source groups of a run, chunks of a time-parallel run)."""
    for name, data in more.items():
        total[name] = total[name] + data if name in total else np.array(data, dtype=np.float64)
    return total


@dataclass
class PressureSlice:
    """A slice of a result: the pressure on a plane of cells at some times.

    Attributes:
        name: its name. axis: 'x', 'y' or 'z', the plane's normal; position: the plane's
            coordinate along it (m, a cell centre); (n,), one per snapshot, for a slice that moves.
        times: (n,) s, the snapshots' times (whole steps). pressure: (n, n_a, n_b) Pa, with a and b
            the other two axes in order (x, y for a z slice). solid: (n, n_a, n_b) bool, cells whose
            centre lies inside an object.
        origin: (2,) m, centre of cell (0, 0) along a and b; (n, 2) for a slice that moves.
        cell_size: h (m). follows: the travelling object whose box the slice moves with, or "".
    """

    name: str
    axis: str
    position: float | np.ndarray
    times: np.ndarray
    pressure: np.ndarray
    solid: np.ndarray
    origin: np.ndarray
    cell_size: float
    follows: str = ""

    def position_at(self, i: int) -> float:
        """The plane's coordinate (m) at snapshot i."""
        return float(np.broadcast_to(np.asarray(self.position, dtype=np.float64), (len(self.times),))[i])

    @property
    def plane_axes(self) -> str:
        """The names of axes a and b, e.g. 'xy' for a z slice."""
        return "".join(x for x in AXES if x != self.axis)

    def extent(self, i: int = 0) -> tuple[float, float, float, float]:
        """(a_min, a_max, b_min, b_max) m: the outer faces of the cells at snapshot i, for ``imshow``."""
        h = self.cell_size
        n_a, n_b = self.pressure.shape[1:]
        origin = np.asarray(self.origin, dtype=np.float64)
        a0, b0 = (origin[i] if origin.ndim == 2 else origin) - h / 2
        return a0, a0 + n_a * h, b0, b0 + n_b * h


def make_slices(scene: Scene, data: dict[str, np.ndarray]) -> dict[str, PressureSlice]:
    """The result's slices from recorded (summed) data, slice name → (times, n_a, n_b) Pa, with
    positions, times and solid masks; a slice missing from ``data`` is left out."""
    grid = scene.grid
    out = {}
    for spec in scene.slices:
        if spec.follows is not None:
            if spec.name in data:
                out[spec.name] = _moving_slice(scene, spec, data[spec.name])
            continue
        a, b = spec.in_plane
        origin = np.asarray(grid.origin)[[a, b]] + grid.h * np.asarray(spec.lo, dtype=np.float64)
        pressure = data.get(spec.name)
        if pressure is None:   # not recorded by this run
            continue
        times = np.asarray(spec.steps, dtype=np.float64) * grid.dt
        out[spec.name] = PressureSlice(
            name=spec.name, axis=AXES[spec.axis], position=spec.position(grid),
            times=times, pressure=pressure, solid=np.stack([solid_mask(scene, spec, t) for t in times]),
            origin=origin, cell_size=grid.h)
    return out


def _moving_slice(scene: "Scene", spec: MovingSliceSpec, pressure: np.ndarray) -> PressureSlice:
    """The result's slice of a travelling object's box: each snapshot's plane and origin where
    the box then lies, and the object's solid cells on it."""
    from .travelling import travellers  # late import: travelling reads scenes

    trav = next(t for t in travellers(scene) if t.obj.name == spec.follows)
    a, b = spec.in_plane
    positions, origins, solid = [], [], []
    for step in spec.steps:
        box, index, lo, hi = spec.placement(trav, scene, step)
        solid.append(_solid_cells(box, spec, index, lo, hi, [trav.obj], step * scene.grid.dt))
        positions.append(box.origin[spec.axis] + box.h * index)
        origins.append(np.asarray(box.origin)[[a, b]] + box.h * np.asarray(lo, dtype=np.float64))
    return PressureSlice(name=spec.name, axis=AXES[spec.axis], position=np.asarray(positions),
                         times=np.asarray(spec.steps, dtype=np.float64) * scene.grid.dt, pressure=pressure,
                         solid=np.stack(solid), origin=np.stack(origins), cell_size=scene.grid.h,
                         follows=spec.follows)


def solid_mask(scene: Scene, spec: SliceSpec, t: float) -> np.ndarray:
    """(n_a, n_b) bool: the slice's cells whose centre lies inside an object of the fixed box at t."""
    return _solid_cells(scene.grid, spec, spec.index, spec.lo, spec.hi, scene.objects, t)


def _solid_cells(grid: Grid, plane: _Plane, index: int, lo: tuple[int, int], hi: tuple[int, int], objects: list,
                 t: float) -> np.ndarray:
    """(n_a, n_b) bool: the cells of ``grid``'s plane ``index`` along ``plane.axis``, over [lo, hi)
    along its two axes, whose centre lies inside one of ``objects`` at time t (s)."""
    from .boundary import Body  # late import: the boundary module is heavy

    a, b = plane.in_plane
    ia, ib = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
    cells = np.zeros((ia.size, 3))
    cells[:, plane.axis] = index
    cells[:, a], cells[:, b] = ia.ravel(), ib.ravel()
    points = grid.centres(cells)
    solid = np.zeros(ia.size, dtype=bool)
    for obj in objects:
        body = Body(obj.geometry, obj.motion)
        solid |= body.signed_distance(points, body.at(t)) < 0
    return solid.reshape(ia.shape)
