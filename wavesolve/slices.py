"""Pressure slices: snapshots of the field on a grid plane at chosen times (``[[slices]]``).

A slice is the plane of cells normal to one axis nearest the scene's ``position``, cut to the
box's interior (the absorbing layer left out), taken at the whole time steps nearest the scene's
``times``. The run hands its field to a :class:`SliceRecorder` at those steps; the pressures are
those of the cells (Pa), with no interpolation. The field is linear in the shaders, so the
slices of the source groups of a run and of the chunks of a time-parallel run add up like their
listener signals do (``wavesolve.chunks``). Which cells are solid is found afterwards from the
objects' geometry at each time (:func:`solid_mask`): a cell is solid where its centre lies
inside an object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    from .scene import Scene

AXES = "xyz"


@dataclass(frozen=True)
class SliceSpec:
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

    @property
    def in_plane(self) -> tuple[int, int]:
        """The two axes of the plane, ascending."""
        a, b = (x for x in range(3) if x != self.axis)
        return a, b

    def position(self, grid: Grid) -> float:
        """The plane's coordinate along ``axis`` (m): a cell centre."""
        return float(grid.origin[self.axis] + grid.h * self.index)

    @property
    def shape(self) -> tuple[int, int]:
        """Cells of one snapshot (n_a, n_b)."""
        return self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]


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
    (a chunk whose run does not reach that time adds nothing to it).
    """

    def __init__(self, specs: list[SliceSpec]) -> None:
        self.specs = list(specs)
        self.data = {s.name: np.zeros((len(s.steps), *s.shape)) for s in self.specs}

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
            cut: list[Any] = [slice(None)] * 3
            cut[s.axis] = s.index
            a, b = s.in_plane
            cut[a], cut[b] = slice(s.lo[0], s.hi[0]), slice(s.lo[1], s.hi[1])
            plane = np.asarray(sim.engine.to_host(sim.p[tuple(cut)]), dtype=np.float64)
            for i in hits:
                self.data[s.name][i] += plane


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
            coordinate along it (m, a cell centre).
        times: (n,) s, the snapshots' times (whole steps). pressure: (n, n_a, n_b) Pa, with a and b
            the other two axes in order (x, y for a z slice). solid: (n, n_a, n_b) bool, cells whose
            centre lies inside an object.
        origin: (2,) m, centre of cell (0, 0) along a and b; cell_size: h (m).
    """

    name: str
    axis: str
    position: float
    times: np.ndarray
    pressure: np.ndarray
    solid: np.ndarray
    origin: np.ndarray
    cell_size: float

    @property
    def plane_axes(self) -> str:
        """The names of axes a and b, e.g. 'xy' for a z slice."""
        return "".join(x for x in AXES if x != self.axis)

    def extent(self) -> tuple[float, float, float, float]:
        """(a_min, a_max, b_min, b_max) m: the outer faces of the cells, for ``imshow``."""
        h = self.cell_size
        n_a, n_b = self.pressure.shape[1:]
        a0, b0 = self.origin - h / 2
        return a0, a0 + n_a * h, b0, b0 + n_b * h


def make_slices(scene: Scene, data: dict[str, np.ndarray]) -> dict[str, PressureSlice]:
    """The result's slices from recorded (summed) data, slice name → (times, n_a, n_b) Pa, with
    positions, times and solid masks; a slice missing from ``data`` is left out."""
    grid = scene.grid
    out = {}
    for spec in scene.slices:
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


def solid_mask(scene: Scene, spec: SliceSpec, t: float) -> np.ndarray:
    """(n_a, n_b) bool: the slice's cells whose centre lies inside an object of the fixed box at t."""
    from .boundary import Body  # late import: the boundary module is heavy

    grid = scene.grid
    a, b = spec.in_plane
    ia, ib = np.meshgrid(np.arange(spec.lo[0], spec.hi[0]), np.arange(spec.lo[1], spec.hi[1]), indexing="ij")
    index = np.zeros((ia.size, 3))
    index[:, spec.axis] = spec.index
    index[:, a], index[:, b] = ia.ravel(), ib.ravel()
    points = grid.centres(index)
    solid = np.zeros(ia.size, dtype=bool)
    for obj in scene.objects:
        body = Body(obj.geometry, obj.motion)
        solid |= body.signed_distance(points, body.at(t)) < 0
    return solid.reshape(ia.shape)
