"""The GPU backend: CUDA kernels of ``cuda/fdtd.cu`` driven from Python.

:class:`CudaBackend` is written against an array module ``xp`` and a kernel launcher
``launch(name, dtype, n, args)``. :class:`CupyBackend` is it with ``xp = cupy`` and the kernels
compiled at run time by ``cupy.RawModule`` (NVRTC); in the tests the same class runs with
``xp = numpy`` and the host build of the same source (:mod:`.cuda_host`), so the driver and the
arithmetic are checked against the NumPy reference on machines without a GPU.

Per step on the GPU: the floor's mirror rows (with a ground), ghost cells (one kernel: a
precomputed sparse operator, no host solve, a warp per row), the volume balance of rigidly
sounding objects (two kernels, where there are such objects: wavesolve/flux_balance.py), the fused
cell update with the listener samples (one kernel: interior leapfrog, in the layer the face velocities and split
pressures, and extra blocks that sample the listeners), then the thin-part correction and the
solid cells' zeroing (one kernel). Where nothing moves,
kernels/cuda_blocks.py records blocks of such steps as CUDA graphs; otherwise each step is
launched from Python, boundary accelerations going up through pinned buffers and samples kept in
a device buffer copied back every ``SAMPLE_BLOCK`` steps.

Ghost cells of geometry that does not move: the system (I − W_gg) p_g = W_gf p_f + ρ·offset·aₙ
couples only ghost cells whose image stencils touch each other, in small groups (connected
components of W_gg: at most tens of cells for the shipped scenes). Its inverse is therefore
block-diagonal and sparse; we compute it exactly per group on the host and ship
M = (I − W_gg)⁻¹ W_gf and N = (I − W_gg)⁻¹ diag(offset), so p_g = M p_f + ρ N aₙ is one sparse
product per step, exact up to rounding. Moving geometry rebuilds the system every step on the host
anyway; there the host solves it (as the CPU backends do) from the fluid values its stencils read,
copied down, and the solution is copied up.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..backend import Backend, BackendError, Recorder

CUDA_DIR = Path(__file__).parent / "cuda"
KERNEL_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
#: The kernels of fdtd.cu (each built per precision, with KERNEL_SUFFIX).
KERNELS = ("ws_cell", "ws_cell32", "ws_ghost", "ws_balance", "ws_balance_add", "ws_close", "ws_mirror", "ws_probe",
           "ws_peak")
#: Kernels run with one warp (32 threads) per work item (fdtd.cuh, WS_WARP_SUM_KERNEL).
WARP_KERNELS = ("ws_ghost", "ws_balance")
#: NVRTC options: no FMA contraction, so device rounding follows the reference's.
NVRTC_OPTIONS = ("--fmad=false", "-std=c++14")
#: Threads per block of every kernel but the cell kernel.
BLOCK = 256
#: Partial maxima of the peak kernel (ws_peak): as many threads as an H100's 132 SMs hold about
#: twice over, enough loads in flight for one read of the field at the copy rate.
PEAK_PARTS = 1 << 18
#: The cell kernel's tiling (bench/gpu_tiling.py on H200s, fourteenth and fifteenth sessions,
#: bench/RESULTS.md): CELL_BLOCK threads per block (fewer where the interior is narrower), each
#: interior thread marching XCHUNK x planes, or XCHUNK_IN_L2 where both fields fit in the GPU's L2
#: cache (the real-time grids, whose layer cells outweigh the interior: fewer, longer-marching
#: interior blocks leave the SMs to the layer's), and updating ZVEC cells along z (the widest the
#: grid allows) in tiles of Z_LANES threads along z (``z_lanes``). With 4 cells a thread (float32),
#: 128 threads and 4 planes were the best or within 3 % of the best on 256³ and 384³, 8 planes
#: within 1 % on 88³ (16, the best with 1 cell a thread, was 12 % slower there).
CELL_BLOCK = 128
XCHUNK = 4
XCHUNK_IN_L2 = 8
#: Cells an interior thread updates along z, loaded and stored as one access (widest first; 16 bytes
#: at most, the widest load a CUDA thread issues): 4 instead of 1 made the float32 interior 18 %
#: faster on 256³ and 384³ (H200), no faster in float64 (2). Threads along z of an interior tile.
ZVEC = (4, 2, 1)
Z_LANES = (32, 16, 8)
#: The widest group of layer cells along z a thread updates (16-byte accesses like the interior's,
#: kernels/cuda/fdtd.cuh, ws_layer_cells) that CupyLauncher builds into the kernel; the driver's
#: default group is the widest the grid allows up to it. Groups of 4 cost every path of the kernel
#: registers (float32: 40 → 64) but took a quarter off the layer and made whole steps 14–17 % (float32) and
#: 5–6 % (float64) faster on 256³ and 384³ (H200, bench/RESULTS.md); bench/gpu_tiling.py builds 1 too.
LAYER_VEC_BUILT = 4
#: Largest element count the 32-bit cell kernel (ws_cell32) indexes.
INDEX32_LIMIT = 2**31 - 1
#: Listener samples kept on the device before one copy back to the host.
SAMPLE_BLOCK = 4096


def z_lanes(row_lanes: int) -> int:
    """Threads along z of an interior tile for rows of ``row_lanes`` threads: the most (of Z_LANES)
    that leave at most an eighth of the tiles' threads idle, else the fewest idle."""
    idle = {n: -(-row_lanes // n) * n - row_lanes for n in Z_LANES}
    fits = [n for n in Z_LANES if 8 * idle[n] <= -(-row_lanes // n) * n]
    return fits[0] if fits else min(Z_LANES, key=lambda n: (idle[n], -n))


def kernel_source() -> str:
    """fdtd.cu with its header inlined (CuPy's compile cache keys on the source text)."""
    header = (CUDA_DIR / "fdtd.cuh").read_text()
    body = (CUDA_DIR / "fdtd.cu").read_text().replace('#include "fdtd.cuh"', "")
    return header + "\n" + body


class CudaFieldUpdate:
    """Every cell in one kernel (ws_cell, or ws_cell32 with 32-bit indices where they fit): interior
    leapfrog, or layer cell with its faces' velocities. Its blocks come in segments (fdtd.cuh): the
    interior box's tiles marched along x, then each layer slab's cells, so that every block runs one
    branch; blocks after those may sample the listeners (``sample_and_update``). The face
    velocities live in two buffers, v^{n−½} read and v^{n+½} written, which swap after each call
    (``v_aux`` is the current one), so that no cell reads a face another cell of the same launch
    writes.

    Every call swaps them, so a recorded block of steps (kernels/cuda_blocks.py, an even number of
    steps) ends with the buffers where it found them, as the fields p and p⁻ do.
    """

    def __init__(self, backend: "CudaBackend", grid, layer, dtype: np.dtype) -> None:
        if any(layer.y_fastest):
            raise ValueError("the CUDA kernels read the absorbing layer in C order (z_slabs_y_fastest=False)")
        self.launch = backend.launch
        self.dtype = np.dtype(dtype)
        to = backend.asarray
        # the kernels own this state on the device (for xp = numpy: the layer's own p_aux, and its
        # v_aux as the first of the two velocity buffers); both velocity buffers start equal (the
        # faces of a slab skipped under a floor keep that value in both)
        self.p_aux = to(layer.p_aux)
        self._v = [to(layer.v_aux), backend.xp.array(layer.v_aux, copy=True)]
        self.slab_desc = to(layer.slab_desc)
        self.face_A, self.face_B = to(layer.face_A), to(layer.face_B)
        self.cell_G, self.cell_C = to(layer.cell_G), to(layer.cell_C)
        self.n_cells = grid.cells
        self.dims = tuple(np.int64(n) for n in grid.shape)
        self.L = np.int64(grid.layer)
        self.lam2 = self.dtype.type(grid.courant ** 2)
        self.six = self.dtype.type(6)
        self._grid, self._slab_cells = grid, [int(np.prod(row[4:7])) for row in layer.slab_desc]
        self._to = to
        inner = [n - 2 * grid.layer for n in grid.shape]
        in_l2 = 2 * grid.cells * self.dtype.itemsize <= backend.l2_bytes
        self.set_tiling(min(CELL_BLOCK, 32 * -(-inner[2] // 32)), min(inner[0], XCHUNK_IN_L2 if in_l2 else XCHUNK))
        self._no_probes = (backend.no_index, backend.no_values, backend.no_values, np.int64(0))
        # 32-bit indices where every flat index of the grid and the layer's arrays fits them
        largest = max(grid.cells, self.p_aux.size, self._v[0].size)
        self.kernel = "ws_cell32" if largest <= INDEX32_LIMIT else "ws_cell"

    def set_tiling(self, block: int, xchunk: int, zvec: int | None = None, lanes: int | None = None,
                   lvec: int | None = None) -> None:
        """Threads per block (a multiple of 32), x planes per interior chunk, cells per interior thread
        along z (``zvec``: 1, 2 or 4, at most 16 bytes, dividing nz and the layer's width; default
        the widest such), threads along z per interior tile (``lanes``: 8, 16 or 32; default
        ``z_lanes``) and cells per layer thread along z (``lvec``: as ``zvec``, and at most what the
        launcher's build holds, ``layer_vec_max``; default the widest up to LAYER_VEC_BUILT). Sets
        the segments of blocks: the interior's tiles of ``lanes`` (z) × block/lanes (y) threads,
        marched along x in chunks of ``xchunk`` planes (long chunks read each pressure about once,
        short ones give the GPU enough blocks), then each slab's groups of ``lvec`` cells (none for
        the slab under the interior with a ground). The driver's choice: CELL_BLOCK, XCHUNK and
        XCHUNK_IN_L2, and the defaults above; bench/gpu_tiling.py sweeps others."""
        grid = self._grid
        inner = [n - 2 * grid.layer for n in grid.shape]
        widths = self.z_widths
        zvec = widths[0] if zvec is None else zvec
        if zvec not in widths:
            raise ValueError(f"zvec {zvec}: must be one of {widths} on a {grid.shape} grid with a layer of "
                             f"{grid.layer} cells in {self.dtype.name}")
        row_lanes = inner[2] // zvec
        lanes = z_lanes(row_lanes) if lanes is None else lanes
        if lanes not in Z_LANES or block % lanes:
            raise ValueError(f"lanes {lanes}: must be one of {Z_LANES} and divide the block ({block})")
        built = getattr(self.launch, "layer_vec_max", 1)
        lvec = max(w for w in widths if w <= LAYER_VEC_BUILT) if lvec is None else lvec
        if lvec not in widths or lvec > built:
            raise ValueError(f"lvec {lvec}: must be one of {[w for w in widths if w <= built]} on a {grid.shape} "
                             f"grid with a layer of {grid.layer} cells in {self.dtype.name} with this build")
        self.block, self.xchunk, self.zvec, self.lanes, self.lvec = block, xchunk, zvec, lanes, lvec
        tiles = -(-row_lanes // lanes) * -(-inner[1] // (block // lanes))
        blocks = [tiles * -(-inner[0] // xchunk)]
        for s, cells in enumerate(self._slab_cells):
            blocks.append(0 if (s == 4 and grid.ground) else -(-cells // (lvec * block)))
        self.seg_start = self._to(np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64))
        self.n_blocks = int(sum(blocks))

    @property
    def z_widths(self) -> list[int]:
        """The interior's possible cells a thread along z (of ZVEC, widest first): an access of 16
        bytes at most, aligned in every row (dividing nz and the layer's width)."""
        g = self._grid
        return [w for w in ZVEC if w * self.dtype.itemsize <= 16 and g.shape[2] % w == 0 and g.layer % w == 0]

    @property
    def v_aux(self) -> Any:
        """The current face velocities (packed as ``AbsorbingLayer.v_aux``)."""
        return self._v[0]

    @property
    def nbytes(self) -> int:
        """Device memory of the layer's state: split pressures and both velocity buffers (bytes)."""
        return int(self.p_aux.nbytes + self._v[0].nbytes + self._v[1].nbytes)

    def __call__(self, p: Any, out: Any) -> None:
        self.launch_blocks(p, out, self.seg_start, self.n_blocks)
        self._v.reverse()

    def sample_and_update(self, p: Any, out: Any, probes: "DeviceProbes", samples: Any) -> None:
        """The listeners' samples of p into ``samples`` (float64 (n,) device array) and the update,
        in one launch (the cell kernel only reads p)."""
        n_blocks = self.n_blocks + -(-probes.n // self.block)    # the listeners' blocks follow the cells'
        self.launch_blocks(p, out, self.seg_start, n_blocks,
                           (probes.cells, probes.weights, samples, np.int64(probes.n)))
        self._v.reverse()

    def launch_blocks(self, p: Any, out: Any, seg_start: Any, n_blocks: int, probes: tuple | None = None) -> None:
        """One launch of the cell kernel over ``n_blocks`` blocks in the segments ``seg_start``
        (WS_SEGMENTS + 1 block offsets; a subset of this update's blocks times one part alone), the
        blocks past the last offset sampling ``probes`` = (cells, weights, samples, count), without
        swapping the velocity buffers. Accesses of zvec (lvec) cells need p and out aligned to them
        (device allocations are)."""
        access = max(self.zvec, self.lvec) * self.dtype.itemsize
        if access > self.dtype.itemsize and any(_device_address(a) % access for a in (p, out)):
            raise BackendError(f"the cell kernel's fields must be aligned to {access} bytes (a view into a "
                               "larger array is not)")
        nx, ny, nz = self.dims
        v_old, v_new = self._v
        self.launch(self.kernel, self.dtype, self.n_cells,
                    (p, out, self.p_aux, v_old, v_new, self.slab_desc, seg_start, np.int64(self.block),
                     self.cell_G, self.cell_C, self.face_A, self.face_B, nx, ny, nz, self.L, self.lam2, self.six,
                     *(probes or self._no_probes), np.int64(self.xchunk), np.int64(self.zvec),
                     np.int64(self.lanes), np.int64(self.lvec)),
                    blocks=(n_blocks, self.block))


def _device_address(a: Any) -> int:
    """The device address of a CuPy array's first element; 0 for host arrays (whose host build
    accesses elements one by one)."""
    return int(getattr(getattr(a, "data", None), "ptr", 0))


class _HostAttributes:
    """Falls back to the wrapped host object for attributes the device wrapper does not hold."""

    host: Any

    def __getattr__(self, name: str) -> Any:
        if name == "host":
            raise AttributeError(name)
        return getattr(self.host, name)


class DeviceGhostCells(_HostAttributes):
    """Ghost cells set on the device: p_g = M p_f + ρ N aₙ (see ``boundary.ghost_operator``)."""

    def __init__(self, backend: "CudaBackend", ghosts) -> None:
        self.host = ghosts
        self.backend = backend
        self.launch = backend.launch
        self._cells_of: tuple | None = None     # the host arrays whose cells are on the device (moving)
        self._balance_from = None               # the host's Balance whose arrays are on the device
        self._build()

    def _build(self) -> None:
        """Upload the operators of the host's current boundary system (after each update): rows of
        ghost and fresh cells, then back values of one-cell-thick parts (kept in ``self.back``)."""
        ghosts, backend = self.host, self.backend
        n_front = len(ghosts.index)
        self.n = n_front + ghosts.n_back
        if self.n == 0:
            return
        self._upload_balance()
        cells = (ghosts.index, ghosts.fluid_cols, ghosts.fresh, ghosts._link_fluid, ghosts._link_row, ghosts._link_cell)
        if ghosts.moving and self._cells_of is not None and all(a is b for a, b in zip(cells, self._cells_of)):
            return          # a keyed system between keys: the same cells, only its weights changed (host)
        self._cells_of = cells if ghosts.moving else None
        to = backend.asarray
        i64 = np.int64
        self.back = backend.xp.zeros(max(ghosts.n_back, 1), dtype=np.float64)
        fluid, back_row, cell, _ = ghosts.thin_links()
        self._links = (to(fluid.astype(i64)), to(back_row.astype(i64)), to(cell.astype(i64)),
                       len(fluid)) if len(fluid) else None
        if ghosts.moving:
            # rebuilt every step: the host solves the system (as on the CPU) from the fluid values its
            # stencils read, copied down, and the solution goes back up; inverting it for the
            # operators every step cost several times more (rolling_can: 18 ms a step)
            self.fluid_cols = to(ghosts.fluid_cols.astype(i64))
            self._index = to(ghosts.index.astype(i64))       # (the host's ``index`` stays its own)
            self._fresh_index = to(ghosts.index[ghosts.fresh].astype(i64))
            return
        M, N = ghosts.operator()

        def operator(rows: np.ndarray) -> tuple:
            m, n = M[rows], N[rows]
            for a in (m, n):
                a.sort_indices()
            front = int(np.count_nonzero(rows < n_front))     # front rows come first
            m_cell = ghosts.fluid_cols[m.indices].astype(i64)   # columns as the fluid cells' flat indices
            return (to(ghosts.index[rows[:front]].astype(i64)), (to(m.indptr.astype(i64)), to(m_cell), to(m.data)),
                    (to(n.indptr.astype(i64)), to(n.indices.astype(i64)), to(n.data)), len(rows), np.int64(front))

        self._all = operator(np.arange(self.n))
        fresh = np.flatnonzero(ghosts.fresh)
        self._fresh = operator(fresh) if len(fresh) else None
        self.upload = backend.uploader(ghosts.inputs)

    def _upload_balance(self) -> None:
        """The balanced objects' face lists (``flux_balance``) of the host's current system, on the
        device (after each update whose cells changed)."""
        to, xp = self.backend.asarray, self.backend.xp
        bal = self.host.balance()
        if self._balance_from is bal:
            return
        self._balance_from = bal
        face_ptr, face_src, face_fluid, count_inv, add_ptr, add_dst, vol_ptr, vol_idx = bal.arrays()
        add_body = np.repeat(np.arange(bal.bodies, dtype=np.int64), np.diff(add_ptr))
        self._balance = (bal.bodies, (to(face_ptr), to(face_src), to(face_fluid)), to(count_inv), len(add_dst),
                         to(add_body), to(add_dst), (to(vol_ptr), to(vol_idx)), len(vol_idx), xp.zeros(max(bal.bodies, 1)))

    def _launch_balance(self, p: Any, accel: Any, density: float) -> None:
        """Each balanced object's volume balance on the ghost values in ``p`` and the back values,
        for the boundary input ``accel`` (a float64 device array; a host array is uploaded where the
        balance reads it): ws_balance (a warp per object), then ws_balance_add (a thread per value)."""
        bodies, faces, count_inv, n_add, add_body, add_dst, vol, n_vol, lam = self._balance
        if not n_add:
            return
        if n_vol and (not isinstance(accel, self.backend.xp.ndarray) or self.backend.xp is np):
            accel = self.backend.asarray(np.asarray(accel, dtype=np.float64))
        elif not n_vol:
            accel = count_inv                   # not read: no object's entry reads a Q̇
        scale = np.float64(density / self.host.grid.h)
        self.launch("ws_balance", p.dtype, bodies, (p, self.back, *faces, count_inv, accel, *vol, scale, lam))
        self.launch("ws_balance_add", p.dtype, n_add, (p, self.back, add_body, add_dst, lam))

    def _host_solve(self, p: Any, accel: Any, density: float) -> np.ndarray:
        """Moving geometry: the system's solution (n,) on the host, from p's fluid values."""
        fluid = self.backend.to_host(p.reshape(-1)[self.fluid_cols])
        return self.host.solve_fluid(fluid, self.backend.to_host(accel), density)

    def __len__(self) -> int:
        return self.n

    def update(self, t: float) -> None:
        """Rebuild the host system for time t (moving objects) and upload its operators."""
        self.host.update(t)
        self._build()

    def _launch(self, p: Any, op: tuple, accel: Any, density: float) -> Any:
        """ws_ghost for the rows of ``op``; returns the boundary input as read (on the device)."""
        index, M, N, rows, front = op
        if not isinstance(accel, self.backend.xp.ndarray) or self.backend.xp is np:
            accel = self.upload(np.asarray(accel, dtype=np.float64))
        self.launch("ws_ghost", p.dtype, rows, (p, index, *M, *N, accel, np.float64(density), front, self.back))
        return accel

    def apply(self, p: Any, accel: Any, density: float) -> None:
        """Set the ghost and fresh cells of ``p`` (device array) for normal accelerations ``accel``
        (m/s²; a host array, uploaded, or a float64 device array, used in place); keep the back
        values of one-cell-thick parts on the device."""
        if not self.n:
            return
        if self.host.moving:
            values = self._host_solve(p, accel, density)
            n_front = len(self._index)
            p.reshape(-1)[self._index] = self.backend.asarray(values[:n_front].astype(p.dtype))
            if self.host.n_back:
                self.back[...] = self.backend.asarray(values[n_front:])
            self._launch_balance(p, accel, density)
            return
        accel = self._launch(p, self._all, accel, density)
        self._launch_balance(p, accel, density)

    def correct_thin_parts(self, p: Any, out: Any, lam2: float, solid: Any = None) -> None:
        """After the field update: ``out += λ²(p_back − p_g)`` at the far-side neighbours of
        one-cell-thick parts (as GhostCells.correct_thin_parts on the host), and, in the same
        launch, ``out`` held at zero on the cells ``solid`` (device array of flat indices) if given."""
        links = self._links if self.n else None
        if links is None:
            if solid is not None:
                self.backend.zero_cells(out, solid)
            return
        fluid, back_row, cell, n_links = links
        zero = self.backend.no_index if solid is None else solid
        count = n_links + (0 if solid is None else len(solid))
        self.launch("ws_close", p.dtype, count,
                    (p, out, np.int64(n_links), fluid, back_row, cell, self.back, np.float64(lam2), zero))

    def apply_fresh_previous(self, p_prev: Any, accel_prev: np.ndarray, density: float) -> None:
        """Give fresh cells of ``p_prev`` their previous-step pressure (as GhostCells does on the host)."""
        if not self.n or not self.host.fresh.any():
            return
        if self.host.moving:
            values = self._host_solve(p_prev, accel_prev, density)[:len(self._index)]
            p_prev.reshape(-1)[self._fresh_index] = self.backend.asarray(values[self.host.fresh].astype(p_prev.dtype))
            return
        self._launch(p_prev, self._fresh, accel_prev, density)


class DeviceProbes(_HostAttributes):
    """Trilinear listener samples computed on the device (float64)."""

    def __init__(self, backend: "CudaBackend", probes) -> None:
        self.host = probes
        self.launch = backend.launch
        self.xp = backend.xp
        self.n = len(probes.cells)
        self.cells = backend.asarray(probes.cells.astype(np.int64))
        self.weights = backend.asarray(probes.weights.astype(np.float64))

    def sample(self, p: Any, out: Any = None) -> Any:
        """Pressure (n,) at the listeners, a float64 array on the device (``out`` when given)."""
        if out is None:
            out = self.xp.empty(self.n, dtype=np.float64)
        self.launch("ws_probe", p.dtype, self.n, (p, self.cells, self.weights, out))
        return out


class CudaBackend(Backend):
    """The CUDA kernels behind an array module and a launcher (see the module docstring).

    ``launch(name, dtype, n, args, blocks=None)`` runs kernel ``name`` over n work items; with
    ``blocks = (blocks, threads per block)`` as that many blocks (ws_cell, whose blocks find their
    work themselves).
    """

    name = "cuda-host"
    velocity_buffers = 2
    #: L2 cache of the device (bytes; the cell kernel's tiling depends on whether the fields fit)
    l2_bytes = 0

    def __init__(self, xp: Any, launch: Callable[..., None]) -> None:
        self.xp = xp
        self.launch = launch
        #: stand-in index and float64 arrays for kernel arguments that have no items (never read
        #: or written)
        self.no_index = xp.zeros(1, dtype=np.int64)
        self.no_values = xp.zeros(1)

    def asarray(self, a: np.ndarray) -> Any:
        return self.xp.ascontiguousarray(self.xp.asarray(a))

    def uploader(self, n: int) -> Callable[[np.ndarray], Any]:
        """A function moving one (n,) float64 host vector per step to the device."""
        return lambda a: self.xp.ascontiguousarray(a, dtype=np.float64)

    def field_update(self, grid, layer, dtype: np.dtype) -> CudaFieldUpdate:
        return CudaFieldUpdate(self, grid, layer, dtype)

    def ghost_cells(self, ghosts, dtype: np.dtype) -> DeviceGhostCells:
        return DeviceGhostCells(self, ghosts)

    def probes(self, probes) -> DeviceProbes:
        return DeviceProbes(self, probes)

    def device_peak(self, a: Any) -> Any:
        """max |a| over the (non-empty, contiguous) array a, as a 0-d array of its dtype on the
        device, NaN if a holds a NaN: ws_peak reads a once into partial maxima, then their max
        (NumPy's and CuPy's max keep a NaN)."""
        flat = a.reshape(-1)
        parts = min(PEAK_PARTS, flat.size)
        part = self.xp.empty(parts, dtype=flat.dtype)
        self.launch("ws_peak", flat.dtype, parts, (flat, np.int64(flat.size), part))
        return self.xp.max(part)

    def peak(self, a: Any) -> float:
        return float(self.device_peak(a))

    def zero_cells(self, a: Any, index: Any) -> None:
        none = self.no_index
        self.launch("ws_close", a.dtype, len(index), (a, a, np.int64(0), none, none, none, self.no_values,
                                                      np.float64(0), index))

    def sample_and_update(self, update, probes, p: Any, out: Any, samples: Any = None) -> Any:
        """One launch for both where both are this backend's (the cell kernel's listener segment)."""
        if not (isinstance(update, CudaFieldUpdate) and isinstance(probes, DeviceProbes)) or not probes.n:
            return super().sample_and_update(update, probes, p, out, samples)
        if samples is None:
            samples = self.xp.empty(probes.n, dtype=np.float64)
        update.sample_and_update(p, out, probes, samples)
        return samples

    def close_update(self, ghosts, p: Any, out: Any, lam2: float, solid: Any) -> None:
        """One launch for both where the ghost cells are this backend's (ws_close)."""
        if not isinstance(ghosts, DeviceGhostCells):
            return super().close_update(ghosts, p, out, lam2, solid)
        ghosts.correct_thin_parts(p, out, lam2, solid=solid if len(solid) else None)

    def mirror_floor(self, p: Any, grid) -> None:
        L, m = grid.layer, grid.mirror_rows
        nx, ny, nz = grid.shape
        self.launch("ws_mirror", p.dtype, (nx - 2 * L) * (ny - 2 * L) * m,
                    (p, np.int64(nx), np.int64(ny), np.int64(nz), np.int64(L), np.int64(m)))

    def queue(self) -> Any:
        """The host build's stand-in for a stream (kernels/cuda_blocks.py): recorded blocks replay in Python."""
        from .cuda_blocks import HostQueue

        return HostQueue(self.device_peak)

    def block_runner(self, sim) -> Any:
        from .cuda_blocks import BlockRunner

        return BlockRunner(self, sim)


class CupyLauncher:
    """Compiles fdtd.cu once with NVRTC (cupy.RawModule) and launches its kernels: one thread per
    item; a warp per item for WARP_KERNELS; the cell kernel as the blocks its driver asks for."""

    #: The widest layer group its build holds (fdtd.cuh, WS_LAYER_VEC_MAX).
    layer_vec_max = LAYER_VEC_BUILT

    def __init__(self, cupy: Any) -> None:
        self.module = cupy.RawModule(code=kernel_source(),
                                     options=NVRTC_OPTIONS + (f"-DWS_LAYER_VEC_MAX={LAYER_VEC_BUILT}",))
        # every kernel loaded now: none may be loaded while a CUDA graph is being captured
        self.kernels: dict[str, Any] = {f"{name}_{suffix}": self.module.get_function(f"{name}_{suffix}")
                                        for name in KERNELS for suffix in KERNEL_SUFFIX.values()}

    def __call__(self, name: str, dtype: np.dtype, n: int, args: tuple, blocks: tuple | None = None) -> None:
        if n == 0:
            return
        kernel = self.kernels[f"{name}_{KERNEL_SUFFIX[np.dtype(dtype)]}"]
        if blocks is None:
            threads = 32 * n if name in WARP_KERNELS else n
            kernel((-(-threads // BLOCK),), (BLOCK,), (np.int64(n), *args))
        else:
            count, threads = blocks
            kernel((count,), (threads,), (np.int64(n), *args))


class _PinnedUploader:
    """Per-step host → device copies without a host wait: a ring of pinned buffers, each reused only
    after the event recorded behind its last copy has passed."""

    def __init__(self, cupy: Any, n: int, slots: int = 32) -> None:
        import cupyx

        self.cupy = cupy
        self.host = [cupyx.empty_pinned(n, dtype=np.float64) for _ in range(slots)]
        self.events: list[Any] = [None] * slots
        self.device = cupy.empty(n, dtype=np.float64)   # stream order protects it
        self.k = 0

    def __call__(self, a: np.ndarray) -> Any:
        if a.shape != self.device.shape:        # another length (aₙ without the objects' Q̇): a plain copy
            return self.cupy.asarray(a, dtype=np.float64)
        s = self.k % len(self.host)
        self.k += 1
        if self.events[s] is not None:
            self.events[s].synchronize()
        self.host[s][...] = a
        stream = self.cupy.cuda.get_current_stream()
        self.device.set(self.host[s], stream=stream)
        event = self.cupy.cuda.Event(disable_timing=True)
        event.record(stream)
        self.events[s] = event
        return self.device


class _DeviceRecorder(Recorder):
    """Keeps samples in a device block of SAMPLE_BLOCK steps; one copy to the host per block."""

    def __init__(self, cupy: Any, out: np.ndarray) -> None:
        super().__init__(out)
        self.cupy = cupy
        self.block = cupy.zeros((out.shape[0], SAMPLE_BLOCK), dtype=np.float64)
        self.start = 0
        self.filled = 0

    def put(self, k: int, samples: Any) -> None:
        if self.filled == SAMPLE_BLOCK:
            self.flush()
        if self.filled == 0:
            self.start = k
        self.block[:, self.filled] = samples
        self.filled += 1

    def flush(self) -> None:
        if self.filled:
            self.out[:, self.start:self.start + self.filled] = self.cupy.asnumpy(self.block[:, :self.filled])
            self.start += self.filled
            self.filled = 0


class CupyBackend(CudaBackend):
    """CUDA kernels on the current CuPy device (float32 or float64 fields)."""

    name = "cupy"

    def __init__(self, cupy: Any) -> None:
        try:
            launch = CupyLauncher(cupy)
        except Exception as exc:
            raise BackendError(f"the cupy backend could not compile its CUDA kernels: {exc}") from exc
        super().__init__(cupy, launch)
        self.l2_bytes = int(cupy.cuda.Device().attributes["L2CacheSize"])

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        try:
            return self.xp.zeros(shape, dtype=dtype)
        except self.xp.cuda.memory.OutOfMemoryError as exc:
            free, total = self.xp.cuda.runtime.memGetInfo()
            need = int(np.prod(shape)) * np.dtype(dtype).itemsize
            # the run's memory check (plan.check_memory) passed before anything was allocated, so
            # the memory went elsewhere since: say so, and leave the scene's remedies to that check
            raise BackendError(
                f"not enough GPU memory for a {shape} {np.dtype(dtype).name} field ({need / 1e9:.2f} GB; "
                f"{free / 1e9:.2f} of {total / 1e9:.2f} GB free), though the run's memory check found room "
                "before it started: another process (nvidia-smi lists them) or another run in this one "
                "holds GPU memory; `wavesolve info SCENE` shows what the scene needs") from exc

    def available_bytes(self) -> int:
        """The current device's free memory plus what CuPy's pool holds unused (bytes)."""
        free, _ = self.xp.cuda.runtime.memGetInfo()
        return int(free) + int(self.xp.get_default_memory_pool().free_bytes())

    def to_host(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def uploader(self, n: int) -> Callable[[np.ndarray], Any]:
        return _PinnedUploader(self.xp, n)

    def recorder(self, out: np.ndarray) -> Recorder:
        return _DeviceRecorder(self.xp, out)

    def queue(self) -> Any:
        from .cuda_blocks import CupyQueue

        return CupyQueue(self.xp, self.device_peak)
