"""Moving rigid objects' boundary systems, exact every K steps and interpolated in time between.

An exact boundary update (:meth:`GhostCells.update`: classification, unknown cells, closest points,
image stencils, assembly) costs about twice a 128³ field update (bench/geometry_cost.py). With
``boundary_interval`` K > 1, :class:`KeyedGhostCells` makes exact systems only at the key steps
0, K, 2K, … (each one K steps ahead of its use). At the key step n₀ it uses S₀, the exact system
there; at step n₀ + j, α = j/K, it uses

  * S₀'s cells: its ghost cells, its held solid cells and thin-part links; S₀'s fresh cells are
    air again (as one step after an exact update), and S₁'s unknown cells that are deep solid in
    S₀ (ghost cells grown for S₁'s stencils) are rows of their own with S₁'s weights;
  * each row's weights and ρaₙ coefficient (1 − α)·w₀ + α·w₁, where w₁ is the same cell's row in
    S₁ (step n₀ + K) written in these columns: an S₁ column that is a row here stays one, one
    that is air after the key reads the field (the union of both systems' air cells);
  * each row's surface point and normal interpolated the same way, read by the shaders with the
    objects' exact rigid states at that step.

The ghost values between keys come from one compiled pass (``geometry_kernels.keyed_solve``) that
reads each weight at α as it goes; the matrices at α are filled in only if something reads them.

A row's image stencil is trilinear in its image point, so its weights move continuously while the
image point crosses cells; the interpolation follows them to second order in the motion over K
steps. What does not move continuously — a cell changing side, a stencil cell turning solid — takes
effect at the next key, up to K steps late; ``key_interval`` caps K so that the surface moves at
most MAX_KEY_DISPLACEMENT_CELLS along its normal in that time, and at most MAX_KEY_SLIDE_CELLS in
all (the shaders' surface points are interpolated, and each one's triangle is found afresh by a
walk over the mesh from the nearer key's). Rows with no counterpart in S₁ keep S₀'s weights, and
so do ghost cells of S₀ that are fresh in S₁: a fresh cell's row extrapolates from beside the cell
itself (about 1 in its sum of |weights|), and leaning towards it would take the Gauss–Seidel
contraction factor over 1 within the interval (an LU every step). An S₁ column that cannot be read
here (air in S₁ but deep solid in S₀: not seen) is dropped and counted in ``dropped``.

Deforming objects (whose vertices are set to the time asked) are not keyed: a scene with one runs
the exact update every step.
"""
from __future__ import annotations

import copy
import functools
import logging
import time

import numpy as np
import scipy.sparse as sp

from .boundary import _ITERATIVE_MAX_NORM, _ITERATIVE_MAX_SWEEPS, _ITERATIVE_TOLERANCE, Body, GhostCells
from .meshes import Geometry
from .grid import Grid
from .shading import BoundaryPoints
from .sorted_lookup import finder, in_sorted

log = logging.getLogger("wavesolve")

#: What a keyed system takes over from the exact system of its key step.
_FROM_KEY = ("states", "index", "fresh", "solid_index", "W_gf", "W_gg", "offset", "fluid_cols", "n_back",
             "_link_fluid", "_link_row", "_link_cell", "rows", "points", "row_surface", "back_ghost_row")


#: Largest distance (cells) the surface may move along its normal between two keys: cell events
#: (a cell changing side) come at most this late in space. Measured on the travelling-sphere test
#: (20 m/s, h = 1 cm; bench/RESULTS.md), error of the side listener against the exact-update run's
#: 3.1 %: 3.5 % at 0.09 cells, 3.6 % at 0.12, 4.5 % at 0.23.
MAX_KEY_DISPLACEMENT_CELLS = 0.1
#: Largest distance (cells) any surface point may move between two keys (sliding along the surface,
#: as on a spinning body). Measured on a 5 cm modal sphere spinning at 35 rev/s with a mode not
#: symmetric about the axis, keyed against exact (bench/RESULTS.md, eleventh session), each
#: interpolated point's triangle found afresh, as % of the RMS: with 0.33-cell edges 0.23 % from
#: 0.24 to 0.99 cell; with 0.66-cell edges (the geometry bench's) 0.30 % at 0.50; with 1.3-cell
#: edges 0.28–0.31 % at 0.24 and 0.43–0.45 % at 0.50, where the exact update follows each facet's
#: passage (its normals turn by the 7.5° between faces): against the spin-free answer of a mode
#: symmetric about the axis, the keyed run is the closer one (test_boundary_keys).
MAX_KEY_SLIDE_CELLS = 0.5


def _speed_bounds(body: Body, times: np.ndarray) -> tuple[float, float]:
    """(normal, total) largest speeds (m/s) of the body's surface over ``times``: total |v| + |ω|·r
    (r its farthest vertex from the object origin); normal |v| + max |ω·(r_v × n_f)| over the faces'
    normals n_f at their own vertices r_v (a rigid motion moves the face plane along its normal at
    v·n + ω·(r × n)), read from the convex hull of those moments."""
    from scipy.spatial import ConvexHull, QhullError

    verts = body.geometry.vertices
    faces = np.asarray(body.geometry.mesh.faces)
    reach = float(np.max(np.linalg.norm(verts, axis=1)))
    normals = body.geometry.face_normals_local(slice(None))
    moments = np.cross(verts[faces], normals[:, None, :]).reshape(-1, 3)
    moments = np.concatenate([moments, -moments])
    try:
        moments = moments[ConvexHull(moments).vertices]
    except QhullError:                          # flat or degenerate: every moment is read
        pass
    normal = total = 0.0
    for first in range(0, len(times), 1024):            # states a block at a time (vectorised)
        states = body.motion.states(times[first:first + 1024])
        v = np.linalg.norm([s.velocity for s in states], axis=1)
        w = np.einsum("sji,sj->si", np.array([s.rotation for s in states]),
                      np.array([s.angular_velocity for s in states], dtype=np.float64))   # object frame
        normal = max(normal, float(np.max(v + np.max(np.abs(moments @ w.T), axis=0))))
        total = max(total, float(np.max(v + np.linalg.norm(w, axis=1) * reach)))
    return normal, total


def key_interval(grid: Grid, bodies: list[Body], duration: float, interval: int) -> int:
    """K for a run of ``duration`` s: ``interval`` or fewer steps, so that in K steps the surface
    moves at most MAX_KEY_DISPLACEMENT_CELLS·h along its normal and MAX_KEY_SLIDE_CELLS·h in all
    (``_speed_bounds``, sampled over the run at least every four steps, at most 20 000 times and at
    least 200)."""
    count = int(np.clip(duration / grid.dt / 4 + 1, 200, 20000))
    times = np.linspace(0.0, duration, count)
    k = int(interval)
    for body in bodies:
        if not body.motion.moves:
            continue
        normal, total = _speed_bounds(body, times)
        for speed, cells in ((normal, MAX_KEY_DISPLACEMENT_CELLS), (total, MAX_KEY_SLIDE_CELLS)):
            if speed > 0.0:
                k = min(k, int(np.floor(cells * grid.h / (speed * grid.dt))))
    return max(1, k)


def boundary_system(grid: Grid, bodies: list[Body], t: float, interval: int = 1,
                    duration: float | None = None) -> GhostCells:
    """The boundary system of a run starting at time t (s): keyed every K steps (``key_interval``
    over ``duration``, s, when given, and logged: a run's first system) when K is above 1,
    something moves and nothing deforms; else exact every step."""
    if any(b.motion.deforms for b in bodies) or not any(b.motion.moves for b in bodies):
        return GhostCells(grid, bodies, t)
    if duration is not None:
        interval = key_interval(grid, bodies, duration, interval)
        if interval > 1:
            log.info("boundary: exact updates every %d steps, interpolated between", interval)
    if interval > 1:
        return KeyedGhostCells(grid, bodies, t, interval=interval)
    return GhostCells(grid, bodies, t)


class _KeySystem(GhostCells):
    """The exact system of a key step, made one interval ahead: a keyed system solves only its own
    (union) systems, so a key's solver is never readied."""

    def _prepare_solver(self, rows: int) -> None:
        pass


class KeyedGhostCells(GhostCells):
    """:class:`GhostCells` whose exact update runs every ``interval`` steps (module docstring).

    Attributes (besides GhostCells'):
        interval: K, steps between exact updates.
        dropped: S₁ weights dropped at the last key (columns deep solid in S₀), for the log.
    """

    def __init__(self, grid: Grid, bodies: list[Body | Geometry], t: float = 0.0, iterative: bool = True,
                 interval: int = 8) -> None:
        if int(interval) < 2:
            raise ValueError(f"boundary interval must be at least 2 steps, got {interval}")
        self.interval = int(interval)
        n = int(round(t / grid.dt))
        first = (n - n % self.interval) * grid.dt if n * grid.dt == t else t    # the key the run starts in
        self._ahead = _KeySystem(grid, bodies, first, iterative)    # the exact systems, made at key steps
        self._ahead_t = first
        self._key: int | None = None            # step of S₀ while an interval is running
        self._union: _Union | None = None
        self._alpha: float | None = None        # α = j/K between keys; None at a key
        self._stale = False                     # whether W_gg/W_gf still hold another α's weights
        self._keyed = False                     # whether solve reads the weights at α on the fly
        self.dropped = 0
        super().__init__(grid, self._ahead.bodies, t, iterative)

    # Between keys the interval's weights are read at α on the fly (keyed_solve); the matrices
    # W_gg and W_gf are filled in only when read.
    @property
    def W_gg(self) -> sp.csr_matrix:
        if self._stale:
            self._fill_weights()
        return self._W_gg

    @W_gg.setter
    def W_gg(self, value: sp.csr_matrix) -> None:
        self._W_gg = value

    @property
    def W_gf(self) -> sp.csr_matrix:
        if self._stale:
            self._fill_weights()
        return self._W_gf

    @W_gf.setter
    def W_gf(self, value: sp.csr_matrix) -> None:
        self._W_gf = value

    def update(self, t: float) -> None:
        """The boundary system at time t (s). Keys are the steps n·Δt with n a multiple of K, so a
        run started at any step (a time chunk) uses the same systems as one started at 0: at a key
        step S₀'s own system, between keys the interpolated one."""
        start = time.perf_counter()
        self.time = t
        dt, K = self.grid.dt, self.interval
        n = int(round(t / dt))
        if n * dt != t:                         # off the step grid (not a Simulation step): exact only
            self._exact(t)
            self.phase_times = dict(self._ahead.phase_times)
            return
        key = n - n % K
        if self._key == key:                    # inside the running interval
            if n == key:
                self._take(self._s0)
            else:
                self._interpolate((n - key) / K, t)
            self.phase_times = {"interpolation": time.perf_counter() - start}
            return
        ahead = self._ahead
        spent: dict[str, float] = {}
        if self._ahead_t != key * dt:           # not the key prepared ahead: a fresh start at this key
            ahead.update(key * dt)
            spent = dict(ahead.phase_times)
        s0 = self._s0 = copy.copy(ahead)
        ahead.update((key + K) * dt)
        self._ahead_t = (key + K) * dt
        t_merge = time.perf_counter()
        self._union = _Union(s0, ahead)
        self.dropped = self._union.dropped
        self._key = key
        t_solver = time.perf_counter()
        self._take(s0)                          # readies S₀'s solver (an LU when its fresh cells need one)
        if n != key:
            self._interpolate((n - key) / K, t)
        end = time.perf_counter()
        self.phase_times = {name: spent.get(name, 0.0) + ahead.phase_times.get(name, 0.0)
                            for name in set(spent) | set(ahead.phase_times)}
        self.phase_times["key merge"] = t_solver - t_merge
        self.phase_times["solver setup"] = self.phase_times.get("solver setup", 0.0) + end - t_solver
        self.phase_times["other"] = (end - start) - sum(v for name, v in self.phase_times.items() if name != "other")

    def _exact(self, t: float) -> None:
        """The exact system at t, with no interval running."""
        self._ahead.update(t)
        self._ahead_t = t
        self._key, self._union = None, None
        self._s0 = copy.copy(self._ahead)
        self._take(self._s0)

    def _take(self, system: GhostCells) -> None:
        """Use the exact system of a key step as it is."""
        self._alpha, self._stale, self._keyed = None, False, False
        for name in _FROM_KEY:
            setattr(self, name, getattr(system, name))
        self._back_values = np.zeros(system.n_back)
        self._prepare_solver(len(self.index) + self.n_back)

    def _interpolate(self, alpha: float, t: float) -> None:
        """Coefficients and surface points at α = j/K of the running interval; the weights are read
        at α by :meth:`solve` (or filled into W_gg/W_gf when read)."""
        from .geometry_kernels import interpolate_points

        u = self._union
        rows = len(u.offset0)
        offset, position, local, normal = np.empty(rows), np.empty((rows, 3)), np.empty((rows, 3)), np.empty((rows, 3))
        interpolate_points(alpha, u.offset0, u.offset_step, u.position0, u.position_step, u.local0, u.local_step,
                           u.normal0, u.normal_step, offset, position, local, normal)
        # the interval's matrices keep their structure; only their values change (no caches hold them:
        # the operators and coupled groups are computed for static geometry only)
        self._alpha, self._stale = alpha, True
        self._operator_of = self._groups_of = None
        self.offset = offset
        self.fluid_cols = u.fluid_cols
        self.index, self.rows, self._link_row = u.index, u.rows, u.link_row
        self.fresh = u.no_fresh
        self.states = [b.at(t) for b in self.bodies]
        start = u.triangle if alpha < 0.5 else u.triangle1         # the nearer key's triangles
        self.points = []
        for r, state, body in zip(self.rows, self.states, self.bodies):
            if len(r) == rows:
                r = slice(None)
            # the interpolated points slide over the mesh: each one's triangle is found afresh, when
            # a shader first reads it
            triangle = functools.partial(body.geometry.triangles_under, local[r], start[r])
            self.points.append(BoundaryPoints(position=position[r], normal=normal[r], position_local=local[r],
                                              normal_local=normal[r] @ state.rotation, triangle=triangle,
                                              state=state, motion_volume_acceleration=functools.partial(
                                                  body.motion_volume_acceleration, t, state)))
        self._keyed = self.iterative and u.norm <= _ITERATIVE_MAX_NORM
        if self._keyed:
            self._has_system, self._lu, self._operator = rows > 0, None, None
        else:
            self._prepare_solver(rows)          # reads the weights: an LU at α

    def _fill_weights(self) -> None:
        from .geometry_kernels import interpolate_weights

        u = self._union
        self._stale = False
        self._W_gg, self._W_gf = u.matrices()
        interpolate_weights(self._alpha, u.gg[2], u.gg[3], self._W_gg.data)
        interpolate_weights(self._alpha, u.gf[2], u.gf[3], self._W_gf.data)

    def solid_cells(self) -> np.ndarray:
        """As GhostCells.solid_cells; between keys the same array for the whole interval."""
        return super().solid_cells() if self._alpha is None else self._union.solid

    def solve(self, p: np.ndarray, accel: np.ndarray, density: float) -> np.ndarray:
        """As GhostCells.solve; between keys in one compiled pass (:func:`keyed_solve`) where the
        sweeps are known to contract."""
        if self._keyed:
            x = self._keyed_solve(p.reshape(-1), self._union.gf_cells, accel, density)
            if x is not None:
                return x
        return super().solve(p, accel, density)

    def solve_fluid(self, fluid: np.ndarray, accel: np.ndarray, density: float) -> np.ndarray:
        if self._keyed:
            x = self._keyed_solve(fluid, self._union.gf[1], accel, density)
            if x is not None:
                return x
        return super().solve_fluid(fluid, accel, density)

    def _keyed_solve(self, source: np.ndarray, cols: np.ndarray, accel: np.ndarray, density: float) -> np.ndarray | None:
        """keyed_solve at the interval's α; None (and the LU readied) if its sweeps stall."""
        from .geometry_kernels import keyed_solve

        u = self._union
        x, _, converged = keyed_solve(self._alpha, *u.gg, u.gf[0], cols, u.gf[2], u.gf[3], u.offset0, u.offset_step,
                                      source, np.asarray(accel, dtype=np.float64), float(density), u.coupled,
                                      u.norm, _ITERATIVE_TOLERANCE, _ITERATIVE_MAX_SWEEPS)
        if converged:
            return x
        log.debug("keyed ghost system: sweeps did not converge (q ≤ %.3g); factorising", u.norm)
        self._keyed = False
        self._factorise()
        return None


class _Union:
    """Both keys' systems on one set of rows and the union of their columns (module docstring), for
    the steps after the key. The rows: S₀'s ghost cells; S₁'s unknown cells that are deep solid in
    S₀ (a layer of ghost cells grown for S₁'s stencils: no S₀ row reads them, and they keep S₁'s
    row); S₀'s back values. S₀'s fresh cells (air at the key, where they got both time levels) are
    air again, as one step after an exact update: their rows go and the columns that read them read
    the field. ``gg``/``gf`` = (indptr, indices, w₀, w₁ − w₀) CSR over the rows, ``fluid_cols``
    the union's air cells (ascending flat indices), ``offset0``/``offset_step`` and the surface
    points' ``position0``/``local0``/``normal0`` with their steps, ``triangle``; ``index``,
    ``rows``, ``link_row``: GhostCells' attributes for these rows."""

    def __init__(self, s0: GhostCells, s1: GhostCells) -> None:
        from .geometry_kernels import merge_rows, off_diagonal_rows, rows_start_step, scaled_norm, sorted_positions

        keys0, keys1 = _row_keys(s0), _row_keys(s1)
        find0, find1 = finder(keys0), finder(keys1)
        n0, n1 = len(s0.index), len(s1.index)
        blocked0 = s0.solid_index                                   # ascending

        def is_blocked0(cells: np.ndarray) -> np.ndarray:
            return in_sorted(blocked0, cells, np.searchsorted)

        ghosts0 = np.flatnonzero(~s0.fresh)
        extra1 = np.flatnonzero(is_blocked0(s1.index))              # S₁ front rows deep solid in S₀
        x = len(extra1)
        n_front = len(ghosts0) + x
        # the rows: (S₀ row or −1, S₁ row or −1) of each
        src0 = np.concatenate([ghosts0, np.full(x, -1), n0 + np.arange(s0.n_back)]).astype(np.int64)
        src1 = np.full(len(src0), -1, dtype=np.int64)
        src1[len(ghosts0):n_front] = extra1
        new_row = np.full(len(keys0), -1, dtype=np.int64)           # S₀ row → row here
        new_row[src0[src0 >= 0]] = np.flatnonzero(src0 >= 0)
        owner0, owner1 = s0.row_surface[4], s1.row_surface[4]
        has0 = src0 >= 0
        match = find1(keys0[src0[has0]])
        match[(match >= 0) & (owner1[np.maximum(match, 0)] != owner0[src0[has0]])] = -1
        # a ghost cell of S₀ that is fresh in S₁ keeps S₀'s row until the key: fresh rows extrapolate
        # from beside the cell itself (‖W_gg‖ ≈ 1 on their rows), and leaning towards them makes the
        # sweeps' contraction factor exceed 1 within the interval (an LU each step instead)
        front = (match >= 0) & (match < n1)
        match[front] = np.where(s1.fresh[match[front]], -1, match[front])
        src1[has0] = match
        extra_row = np.full(n1, -1, dtype=np.int64)                 # S₁ front row → its extra row here
        extra_row[extra1] = len(ghosts0) + np.arange(x)

        def in_s0(cells: np.ndarray, back: np.ndarray, front1: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            """(row here or −1, whether air after the key) of cells read as columns (``back``: a
            back value; one S₀ lacks reads the cell's own); ``front1``: their S₁ front rows, which
            name the extra rows."""
            row = find0(2 * cells + back)
            if back.any():
                row = np.where(row >= 0, row, find0(2 * cells))
            row = np.where(row >= 0, new_row[np.maximum(row, 0)], -1)
            solid = is_blocked0(cells)
            if front1 is not None:
                row = np.where((row < 0) & solid & (front1 >= 0), extra_row[np.maximum(front1, 0)], row)
            return row, (row < 0) & ~solid

        fcols0 = s0.fluid_cols.astype(np.int64)
        f1 = s1.fluid_cols.astype(np.int64)
        g0_row, g0_air = in_s0(keys0 // 2, keys0 % 2, None)         # S₀'s own unknown columns
        front1 = find1(2 * (keys1 // 2))
        g1_row, g1_air = in_s0(keys1 // 2, keys1 % 2, front1)
        f_row = np.full(len(f1), -1, dtype=np.int64)
        f_air = np.ones(len(f1), dtype=bool)
        # most of S₁'s air is S₀'s: only the rest is looked up
        other = np.flatnonzero(~in_sorted(fcols0, f1, sorted_positions))
        f_row[other], f_air[other] = in_s0(f1[other], np.zeros(len(other), dtype=np.int64), None)
        extra = np.concatenate([(keys0 // 2)[g0_air], (keys1 // 2)[g1_air], f1[other][f_air[other]]])
        extra = extra[~in_sorted(fcols0, extra, np.searchsorted)]
        self.fluid_cols = np.sort(np.concatenate([fcols0, np.unique(extra)])) if len(extra) else fcols0

        def target(row: np.ndarray, air: np.ndarray, cells: np.ndarray, ordered: bool = False) -> np.ndarray:
            """Column codes for merge_rows: ≥ 0 a row here, −2 − u the union's air column u, −1 none
            (``ordered``: the cells ascend)."""
            code = np.full(len(row), -1, dtype=np.int64)
            code[row >= 0] = row[row >= 0]
            find = sorted_positions if ordered else np.searchsorted
            code[air] = -2 - find(self.fluid_cols, cells[air])
            return code

        W0gg, W0gf, W1gg, W1gf = s0.W_gg, s0.W_gf, s1.W_gg, s1.W_gf
        out = merge_rows(src0, src1, W0gg.indptr.astype(np.int64), W0gg.indices.astype(np.int64), W0gg.data,
                         target(g0_row, g0_air, keys0 // 2),
                         W0gf.indptr.astype(np.int64), W0gf.indices.astype(np.int64), W0gf.data,
                         sorted_positions(self.fluid_cols, fcols0), len(self.fluid_cols),
                         W1gg.indptr.astype(np.int64), W1gg.indices.astype(np.int64), W1gg.data,
                         target(g1_row, g1_air, keys1 // 2),
                         W1gf.indptr.astype(np.int64), W1gf.indices.astype(np.int64), W1gf.data,
                         target(f_row, f_air, f1, ordered=True))
        self.gg, self.gf, self.dropped = out[:4], out[4:8], int(out[8])
        self._matrices: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
        rows = len(src0)

        def start_and_step(a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Each row's value at the key and its change to S₁ (none for a row one side lacks)."""
            wide = a0.ndim == 2
            start, step = rows_start_step(src0, src1, np.asarray(a0, dtype=np.float64).reshape(len(a0), -1),
                                          np.asarray(a1, dtype=np.float64).reshape(len(a1), -1))
            return (start, step) if wide else (start[:, 0], step[:, 0])

        self.offset0, self.offset_step = start_and_step(s0.offset, s1.offset)
        (p0, l0, nrm0, tri0, _), (p1, l1, nrm1, tri1, _) = s0.row_surface, s1.row_surface
        self.position0, self.position_step = start_and_step(p0, p1)
        self.local0, self.local_step = start_and_step(l0, l1)
        self.normal0, self.normal_step = start_and_step(nrm0, nrm1)
        self.triangle = np.where(has0, tri0[np.maximum(src0, 0)], tri1[np.maximum(src1, 0)]) if rows else tri0[:0]
        # the second half of the interval reads S₁'s triangle, nearer its interpolated point
        self.triangle1 = np.where(src1 >= 0, tri1[np.maximum(src1, 0)], self.triangle) if rows else tri0[:0]
        owner = np.where(has0, owner0[np.maximum(src0, 0)], owner1[np.maximum(src1, 0)]) if rows else owner0[:0]
        self.index = np.concatenate([s0.index[ghosts0], s1.index[extra1]])
        self.rows = [np.flatnonzero(owner == k) for k in range(len(s0.rows))]
        self.link_row = s0._link_row - n0 + n_front      # back rows follow the front rows
        self.no_fresh = np.zeros(len(self.index), dtype=bool)
        self.solid = np.concatenate([blocked0, self.index])  # (S₁'s extra rows are in both: zeroed twice)
        # for keyed_solve: the air columns as grid cells, the rows its sweeps revisit, and the
        # larger of the ends' contraction factors (a bound for every α between)
        self.gf_cells = self.fluid_cols[self.gf[1]]
        self.coupled = off_diagonal_rows(self.gg[0], self.gg[1])
        self.norm = max(scaled_norm(self.gg[0], self.gg[1], self.gg[2])[1],
                        scaled_norm(self.gg[0], self.gg[1], self.gg[2] + self.gg[3])[1])


    def matrices(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(W_gg, W_gf) CSR on these rows and columns, made when first asked (their values are the
        caller's to fill in: they start as the key's)."""
        if self._matrices is None:
            rows = len(self.offset0)
            gg = sp.csr_matrix((self.gg[2].copy(), self.gg[1], self.gg[0]), shape=(rows, rows))
            gf = sp.csr_matrix((self.gf[2].copy(), self.gf[1], self.gf[0]), shape=(rows, len(self.fluid_cols)))
            gg.has_sorted_indices = gf.has_sorted_indices = True
            self._matrices = (gg, gf)
        return self._matrices


def _row_keys(s: GhostCells) -> np.ndarray:
    """Each row's cell and kind as one key (G,): 2·cell for a cell's value, 2·cell + 1 for its back value."""
    index = s.index.astype(np.int64)
    return np.concatenate([2 * index, 2 * index[s.back_ghost_row] + 1])
