"""A simulation box that follows its object by whole-cell shifts.

The box (interior + absorbing layer) keeps a fixed shape; its grid origin moves by one cell h along
an axis whenever the object's centre has drifted more than h/2 from the box centre along it (at
most one cell per step and axis: subsonic objects move less than λh/√3 < h/2 per step). A shift
moves every state variable one cell the other way by slice copies, so in world coordinates the
field is untouched: the pressures pⁿ, pⁿ⁻¹ and the absorbing layer's split pressures and face
velocities (``AbsorbingLayer`` packed buffers). The slab exposed on the leading side (the
outermost layer cells) starts at zero: whatever sound reaches that far has been absorbed by the
layer, so zero is the reflection-free value.

On the trailing side one plane of interior cells enters the layer, which needs what the interior
does not keep: split pressures and face velocities. The interior leapfrog pⁿ⁺¹ = 2pⁿ − pⁿ⁻¹ + λ²Δpⁿ
is the staggered scheme with v eliminated; its velocities v^{n−½} are any field with

    −ρc²Δt/h · div v^{n−½} = pⁿ − pⁿ⁻¹   in every fluid cell,

the fluxes through the interface with the layer being the layer's own. Of those fields, the
staggered scheme's (from a silent start) is the irrotational one: v = ∇ψ with the 7-point
Δψ = −(pⁿ − pⁿ⁻¹)·h/(ρc²Δt) and ∂ψ/∂n the interface fluxes (a Neumann problem, solved by a DCT).
So at each shift the interior velocities are rebuilt that way — nothing is tracked between shifts.
Inside the object the divergence is set to a uniform sink carrying the net flux (its monopole),
which makes the problem solvable and drives no spurious flow. Rebuilding, rather than tracking,
matters behind a moving object: ghost and fresh cells set p directly, and tracked velocities
would keep a frozen part there that the layer (which damps each component along its own axis)
turns into sound. The entering plane then gets these velocities, and its pressure goes to a
component the layer does not damp there (p_b = p for the first axis b ≠ a, a the shift axis;
p_a = 0); its inner face along a is set so that the relation above holds to rounding. Likewise a
side-layer cell that the shift takes into an edge of the a-layer keeps the free part of its
pressure out of p_a. The split of a pressure that built up outside the a-layer is not known; the
layer damps p_a as sound travelling along a, so none of it is put there. Putting all of it in
p_a instead (up to the twenty-second session) made the layer damp sound travelling across it,
which returned energy: after a broadband click from a sphere at 15 m/s, 0.36 of the peak energy
at 4.4 ms and a regrowth to 0.81 at 28 ms, against 0.049 and 0.14 now (bench/RESULTS.md).
Finally the object is reclassified against the new origin (the ghost-cell system is rebuilt at the
previous step's pose so that fresh cells are found as in any moving-object step). Between shifts
the system is keyed every K steps (``boundary_keys``), K fixed for the run by its first system.

A box standing on a ground (``Grid.ground``) follows along x and y only. Its floor face is rigid
through the layer too (``AbsorbingLayer``), so the velocity rebuilt at a shift has no flux through
the floor, and the rows under it are the floor's mirror rows, refreshed every step.

Memory and work per step do not depend on how far the object travels: the arrays keep their shape.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .absorbing import slot_axes
from .boundary_keys import boundary_system
from .grid import Grid
from .listeners import Probes
from .scene import Scene, SceneObject
from .simulation import Simulation


class FollowingSimulation(Simulation):
    """A Simulation of one object in a box that re-centres on it by whole-cell shifts.

    Args:
        scene: the scene (medium, precision, time step; its grid's dt and layer are reused).
        obj: the object to follow (its shaders all act).
        grid: the box at t = 0 (see :meth:`wavesolve.travelling.Traveller.grid`).
        centre: the point the box follows (3,) in m at a time (s): the object's centre, or the
            point of the floor under it (``Traveller.emission_point``); with a ground only its x, y count.
        probe_points: (m, 3) world points to sample at a time t (s), or (k, m, 3) at k times (asked
            for MOTION_BLOCK steps at once); they must lie in the interior.
        start_step: step at which the run starts, from a silent field (``grid`` is then the box at
            that time: :meth:`wavesolve.travelling.Traveller.grid`); ``plan.estimate`` samples
            steps this way, and a time-parallel chunk starts so.
        shader_window: the shaders act only at steps first ≤ n < end (a chunk's window).

    Attributes (besides Simulation's): shifts: (3,) int, cells the box has moved along each axis since the start;
    velocity: three face-velocity arrays (m/s; axis a has n_a + 1 faces) filled at each shift: the
    layer's and the interior's staggered-equivalent velocities.
    """

    def __init__(self, scene: Scene, obj: SceneObject, grid: Grid, centre: Callable[[float], np.ndarray],
                 probe_points: Callable[[float], np.ndarray], *, backend: Any = "auto", start_step: int = 0,
                 shader_window: tuple[int, int] | None = None) -> None:
        box_scene = dataclasses.replace(scene, grid=grid, objects=[obj], listeners=[], travellers=[])
        self._points = probe_points
        self._block_first, self._block_points, self._block_probes = 0, np.zeros((0, 0, 3)), None
        self._block_centres = np.zeros((0, 3))
        super().__init__(box_scene, backend=backend, probe_points=probe_points(start_step * grid.dt),
                         start_step=start_step, shader_window=shader_window)
        xp = self.engine.xp
        self.shifts = np.zeros(3, dtype=int)
        self._centre = centre
        self.velocity = [xp.zeros(tuple(n + (1 if b == a else 0) for b, n in enumerate(grid.shape)), self.dtype)
                         for a in range(3)]
        self._C = scene.density * grid.sound_speed ** 2 * grid.dt / grid.h
        self._middle = self.box_centre()

    def box_centre(self) -> np.ndarray:
        """World position (3,) of the centre of the box's interior (m)."""
        lo, hi = self.grid.interior_bounds()
        return 0.5 * (lo + hi)

    def blocks_allowed(self) -> bool:
        """Never: every step may shift the box and moves the probe points."""
        return False

    def step(self) -> Any:
        """Re-centre if needed, sample the probe points of this step, advance one step."""
        if not self._block_first <= self.n < self._block_first + len(self._block_points):
            # the object's centre and the probe points of the coming MOTION_BLOCK steps (one spline
            # call each), and the points' stencils in this box
            times = self._coming_times()
            self._block_first = self.n
            self._block_centres = self._centre(times)
            self._block_points = self._points(times)
            self._block_probes = None
        k = self.n - self._block_first
        drift = self._block_centres[k] - self._middle
        for a in range(2 if self.grid.ground else 3):
            if abs(drift[a]) > 0.5 * self.grid.h:
                self.shift(a, 1 if drift[a] > 0 else -1)
        if self._block_probes is None:                 # (again after a shift: the box moved)
            self._block_probes = Probes(self.grid, self._block_points)
        m = self._block_points.shape[1]
        self.probes = self.engine.probes(self._block_probes.rows(k * m, (k + 1) * m))
        return super().step()

    def _rebuild_velocity(self) -> None:
        """Interior face velocities v^{n−½} = ∇ψ from pⁿ − pⁿ⁻¹, the interface fluxes (already in
        ``velocity``) kept (module docstring)."""
        xp = self.engine.xp
        L, shape = self.grid.layer, self.grid.shape
        inner = tuple(slice(L, n - L) for n in shape)
        m = [n - 2 * L for n in shape]
        rhs = -(self.p[inner].astype(np.float64) - self.p_prev[inner].astype(np.float64)) / self._C
        for a in range(3):               # interface fluxes move to the right-hand side
            lo_face, hi_face, lo_cells, hi_cells = list(inner), list(inner), [slice(None)] * 3, [slice(None)] * 3
            lo_face[a], hi_face[a] = L, shape[a] - L
            lo_cells[a], hi_cells[a] = 0, m[a] - 1
            rhs[tuple(lo_cells)] += self.velocity[a][tuple(lo_face)]
            rhs[tuple(hi_cells)] -= self.velocity[a][tuple(hi_face)]
        solid = xp.zeros(self.grid.cells, dtype=bool)
        solid[self.engine.asarray(self.ghosts.solid_cells())] = True
        solid = solid.reshape(shape)[inner]
        sink = solid if solid.any() else xp.ones(rhs.shape, dtype=bool)
        rhs[sink] -= rhs.sum() / sink.sum()      # the object's net flux (zero-sum: solvable)
        psi = xp.asarray(_neumann_poisson(self.engine.to_host(rhs)))
        for a in range(3):
            faces = list(inner)
            faces[a] = slice(L + 1, shape[a] - L)
            lo, hi = [slice(None)] * 3, [slice(None)] * 3
            lo[a], hi[a] = slice(0, m[a] - 1), slice(1, m[a])
            self.velocity[a][tuple(faces)] = (psi[tuple(hi)] - psi[tuple(lo)]).astype(self.dtype)

    def shift(self, axis: int, direction: int) -> None:
        """Move the box one cell along ``axis`` (direction ±1) and every field with it (module docstring)."""
        xp = self.engine.xp
        shape = self.grid.shape
        split = [xp.zeros(shape, self.dtype) for _ in range(3)]             # pₓ, p_y, p_z
        views = _slab_views(self.layer, *self.layer_buffers())
        slots = [_SlotMasks(xp, k, slab, self.layer.slabs[k].slot1) for k, slab in enumerate(views)]
        for slab, m in zip(views, slots):
            m.unpack(slab, self.p, split, axis)
            for a in range(3):
                self.velocity[a][slab.faces[a]] = slab.v[a]
        self._rebuild_velocity()
        for arr in (self.p, self.p_prev, *split, *self.velocity):
            _shift(arr, axis, direction)
        self._enter_layer(axis, direction, split)
        for slab, m in zip(views, slots):
            m.pack(slab, split)
            for a in range(3):
                slab.v[a][...] = self.velocity[a][slab.faces[a]]
        self._move_box(axis, direction)

    def _move_box(self, axis: int, direction: int) -> None:
        """After the fields have moved: the box's origin one cell along ``axis``, and what hangs on
        it (probe stencils, shift count, the object's boundary system)."""
        grid = self.grid
        origin = np.asarray(grid.origin, dtype=np.float64)
        origin[axis] += direction * grid.h
        self.grid = dataclasses.replace(grid, origin=tuple(float(o) for o in origin))
        self._middle = self.box_centre()
        self._block_probes = None                      # the probe stencils, for the moved box
        self.shifts[axis] += direction
        host = getattr(self.ghosts, "host", self.ghosts)
        # the boundary system in the moved box, made at the previous step (whose solid cells tell
        # this step's fresh ones), keyed every K steps as the run's first system was
        previous = max(self.n - 1, 0) * grid.dt
        system = boundary_system(self.grid, host.bodies, previous, getattr(host, "interval", 1))
        self.ghosts = self.engine.ghost_cells(system, self.dtype)
        self._hold_solid_cells()

    def _enter_layer(self, axis: int, direction: int, split: list) -> None:
        """Split pressures and the inner-face velocity of the interior plane that just entered the
        trailing layer (module docstring)."""
        L, shape = self.grid.layer, self.grid.shape
        plane = L - 1 if direction > 0 else shape[axis] - L
        window: list[Any] = [slice(L, n - L) for n in shape]
        window[axis] = plane
        window = tuple(window)
        p = self.p
        free = next(b for b in range(3) if b != axis)      # a component the layer does not damp there
        for a in range(3):
            split[a][window] = p[window] if a == free else 0
        div_others = 0
        for b in range(3):
            if b == axis:
                continue
            faces = [slice(L, n - L) for n in shape]
            faces[axis] = plane
            hi, lo = list(faces), list(faces)
            hi[b] = slice(L + 1, shape[b] - L + 1)
            lo[b] = slice(L, shape[b] - L)
            div_others = div_others + self.velocity[b][tuple(hi)] - self.velocity[b][tuple(lo)]
        target = -(self.p[window] - self.p_prev[window]) / self._C
        v = self.velocity[axis]
        outer, inner = list(window), list(window)
        if direction > 0:       # faces plane (outer) and plane + 1 (inner): div_a = v[plane+1] − v[plane]
            outer[axis], inner[axis] = plane, plane + 1
            v[tuple(inner)] = v[tuple(outer)] + target - div_others
        else:                   # faces plane (inner) and plane + 1 (outer)
            outer[axis], inner[axis] = plane + 1, plane
            v[tuple(inner)] = v[tuple(outer)] - (target - div_others)


def _neumann_poisson(rhs: np.ndarray) -> np.ndarray:
    """ψ (mean zero) with the 7-point Δψ = rhs on a box of cells with zero-flux faces (DCT-II);
    rhs must sum to zero (it does for a divergence of interior fluxes)."""
    from scipy.fft import dctn, idctn

    r = dctn(rhs, type=2, norm="ortho")
    eig = np.zeros(rhs.shape)
    for a, n in enumerate(rhs.shape):
        shape = [1, 1, 1]
        shape[a] = n
        eig = eig + (2.0 * np.cos(np.pi * np.arange(n) / n) - 2.0).reshape(shape)
    eig[0, 0, 0] = 1.0
    r /= eig
    r[0, 0, 0] = 0.0
    return idctn(r, type=2, norm="ortho")


def _shift(arr: Any, axis: int, direction: int) -> None:
    """arr[j] = arr[j + direction] along ``axis`` (slice copy); the exposed end slab becomes zero."""
    n = arr.shape[axis]
    dst: list[Any] = [slice(None)] * arr.ndim
    src: list[Any] = [slice(None)] * arr.ndim
    end: list[Any] = [slice(None)] * arr.ndim
    if direction > 0:
        dst[axis], src[axis], end[axis] = slice(0, n - 1), slice(1, n), slice(n - 1, n)
    else:
        dst[axis], src[axis], end[axis] = slice(1, n), slice(0, n - 1), slice(0, 1)
    arr[tuple(dst)] = arr[tuple(src)].copy()
    arr[tuple(end)] = 0


class _SlotMasks:
    """Slab k's split-pressure slots (absorbing.py) against whole per-axis split pressures: in each
    cell slot 0 is p_n, slot 1 is p_{b₁} (``first``), p_{b₂} (``second``) or unused, and the rest
    p − slots is the sum of the others."""

    def __init__(self, xp: Any, k: int, slab: "_SlabView", slot1: tuple) -> None:
        self.xp = xp
        self.axes = slot_axes(k)
        shape = slab.p_split[0].shape
        self.first, self.second = (xp.asarray(np.broadcast_to(m, shape)) for m in slot1)

    def unpack(self, slab: "_SlabView", p: Any, split: list, axis: int) -> None:
        """The slab's cells of ``split`` (three whole-grid arrays) from its slots and p. Where both
        other axes are in the rest (a face region), the rest goes to the one that is not the shift
        axis (b₁'s unless that is it): a cell that the shift takes into an edge then starts with no
        split pressure along the shift axis, as the plane entering the layer does."""
        xp, (n, b1, b2) = self.xp, self.axes
        s0, s1 = slab.p_split
        used = self.first | self.second
        rest = xp.where(used, (p[slab.cells] - s0) - s1, p[slab.cells] - s0)
        to_b2 = axis == b1
        split[n][slab.cells] = s0
        split[b1][slab.cells] = xp.where(self.first, s1, xp.where(self.second, rest, 0 if to_b2 else rest))
        split[b2][slab.cells] = xp.where(self.first, rest, xp.where(self.second, s1, rest if to_b2 else 0))

    def pack(self, slab: "_SlabView", split: list) -> None:
        """The slab's slots from ``split`` (the rest follows from p)."""
        xp, (n, b1, b2) = self.xp, self.axes
        slab.p_split[0][...] = split[n][slab.cells]
        slab.p_split[1][...] = xp.where(self.first, split[b1][slab.cells],
                                        xp.where(self.second, split[b2][slab.cells], 0))


@dataclasses.dataclass
class _SlabView:
    """One layer slab: its cell block and face blocks in grid indices, and views into the packed buffers."""

    cells: tuple
    faces: list[tuple]
    p_split: list[Any]
    v: list[Any]


def _slab_views(layer, p_aux: Any, v_aux: Any) -> list[_SlabView]:
    """Views of every slab's split pressures and face velocities in the packed buffers ``p_aux``,
    ``v_aux`` (host or device arrays laid out as ``AbsorbingLayer``'s), with their grid blocks."""
    out = []
    for row, (p_split, v) in zip(layer.slab_desc, layer.views(p_aux, v_aux)):
        lo, ext = [int(x) for x in row[1:4]], [int(x) for x in row[4:7]]
        faces = [tuple(slice(lo[b], lo[b] + v[a].shape[b]) for b in range(3)) for a in range(3)]
        out.append(_SlabView(tuple(slice(lo[b], lo[b] + ext[b]) for b in range(3)), faces, p_split, v))
    return out
