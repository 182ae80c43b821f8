"""The CUDA kernels (wavesolve/kernels/cuda) without a GPU, and the CuPy backend with one.

- nvcc compiles the .cu source to PTX (skipped only where nvcc is absent).
- The same source built for the host (kernels/cuda_host.py) runs every kernel — cells (leapfrog,
  and the layer's faces and split pressures), ghost cells, listener samples — against the NumPy
  reference on random fields, every element checked (tolerances in kernel_cases.py), outputs
  poisoned before each run.
- The Python driver of the GPU backend (CudaBackend) runs whole simulations on that host build.
- ``gpu``-marked tests run the CuPy backend against NumPy: a shortened validation scene, recorded
  blocks, a travelling box, a moving sphere and a one-cell-thick plate.
"""
from __future__ import annotations

import shutil
import subprocess
import types

import numpy as np
import pytest
from conftest import SCENES
from kernel_cases import (SHAPES, assert_close, balance_terms, blocks_scene, compare_travelling, copy_layer, make_grid, plate_scene,
                          poison_layer_cells, random_state)

from wavesolve import load_scene
from wavesolve.absorbing import AbsorbingLayer
from wavesolve.backend import BackendError, resolve_backend
from wavesolve.boundary import GhostCells, ghost_operator
from wavesolve.constants import MOTION_BLOCK
from wavesolve.kernels import cuda_backend
from wavesolve.kernels.cuda_backend import CUDA_DIR, KERNELS, CudaBackend, CudaFieldUpdate
from wavesolve.kernels.cuda_host import HostLauncher, build_host_library, host_compiler
from wavesolve.kernels.reference import ReferenceUpdate
from wavesolve.listeners import Probes
from wavesolve.simulation import Simulation

#: Ghost cells: the precomputed operator and the LU solve round differently; the system is well
#: conditioned (ρ(W_gg) < 0.5 on the shipped scenes), so 1e-12 of max|p| holds in float64. In
#: float32 the result is rounded once to float32 from a float64 value: half an ulp, < 1e-7 relative.
GHOST_TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1.2e-7}


#: Where a driver test runs: the host build of the CUDA source, or CuPy on a GPU.
WHERE = ["host", pytest.param("gpu", marks=pytest.mark.gpu)]


def _driver(request, where: str):
    """The backend for ``where``: CuPy, or the CUDA driver over the host build."""
    return "cupy" if where == "gpu" else CudaBackend(np, request.getfixturevalue("launcher"))


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    if host_compiler() is None:
        pytest.skip("no host C++ compiler")
    return HostLauncher(build_host_library(tmp_path_factory.mktemp("fdtd_host")))


def test_nvcc_compiles_the_cuda_source(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH")
    ptx = tmp_path / "fdtd.ptx"
    proc = subprocess.run([nvcc, "-ptx", "--fmad=false", "-std=c++14", "-arch=compute_75", "-o", str(ptx),
                           str(CUDA_DIR / "fdtd.cu")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = ptx.read_text()
    for name in KERNELS:
        for suffix in ("f32", "f64"):
            assert f".entry {name}_{suffix}(" in text


@pytest.mark.parametrize("dtype,block,xchunk,zvec,lanes", [
    (np.float64, 32, 12, 1, 32), (np.float64, 64, 5, 1, 32), (np.float64, 128, 1, 1, 32),
    (np.float64, 64, 5, 2, 8), (np.float64, 32, 12, 2, 16), (np.float32, 128, 1, 4, 8),
    (np.float32, 64, 5, 4, 32), (np.float32, 32, 3, 2, 16)])
@pytest.mark.parametrize("kernel", ["ws_cell32", "ws_cell"])
def test_interior_tilings_equal_reference(launcher, kernel, dtype, block, xchunk, zvec, lanes):
    """Other tilings of the cell kernel (``set_tiling``, as bench/gpu_tiling.py sweeps them): the
    interior's 12 x planes in one chunk, in chunks of 5, 5 and 2, or one plane a thread; 1, 2 or 4
    cells a thread along z (the device's one access of 16 bytes at most), in tiles of 8, 16 or 32
    threads along z, against the reference to kernel_cases.assert_close's tolerance (float64 1e-12):
    the same sums in the same order. The layer's blocks change with the block size too."""
    grid = make_grid((20, 18, 24), 4)                 # 16 interior cells along z: 16, 8 or 4 lanes
    lay_ref, p, p_prev = random_state(grid, dtype, seed=9)
    ref = ReferenceUpdate(grid, lay_ref, dtype)
    lay_fast = copy_layer(grid, lay_ref)
    fast = CudaFieldUpdate(CudaBackend(np, launcher), grid, lay_fast, dtype)
    fast.set_tiling(block, xchunk, zvec, lanes)
    fast.kernel = kernel
    want, got = p_prev.copy(), p_prev.copy()          # (p⁻ is read, so not poisoned: a cell left
    ref(p, want)                                       # unwritten keeps p⁻, far from p⁺)
    fast(p, got)
    assert_close(got, want, "p⁺")
    assert_close(fast.p_aux, lay_ref.p_aux, "split pressures")
    assert_close(fast.v_aux, lay_ref.v_aux, "face velocities")


@pytest.mark.parametrize("lvec", [1, 2, 4])
@pytest.mark.parametrize("kernel", ["ws_cell32", "ws_cell"])
@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,L", SHAPES + [((21, 19, 24), 4), ((19, 27, 32), 8)])
def test_field_kernels_equal_reference(launcher, shape, L, dtype, ground, kernel, lvec):
    """Three steps of both cell kernels, 32-bit indices (what grids under 2³¹ cells get) and 64-bit
    ones (larger grids), their layer threads updating one cell or groups of 2 or 4 along z
    (``lvec``: where nz and the layer's width allow it, and 4 only in float32, whose group is 16
    bytes), against the reference: p⁺, the stored split pressures and every face velocity, to
    kernel_cases.assert_close's tolerance (float64 1e-12): the same sums in the same order. With a
    ground the cells below the floor are skipped by both (left as they were)."""
    if shape[2] % lvec or L % lvec or lvec * np.dtype(dtype).itemsize > 16:
        pytest.skip("a group this wide is not aligned on this grid or wider than one access")
    grid = make_grid(shape, L, ground=ground)
    lay_ref, p, p_prev = random_state(grid, dtype, seed=sum(shape) + lvec)
    lay_fast = copy_layer(grid, lay_ref)
    ref = ReferenceUpdate(grid, lay_ref, dtype)
    fast = CudaFieldUpdate(CudaBackend(np, launcher), grid, lay_fast, dtype)
    assert fast.kernel == "ws_cell32"
    fast.kernel = kernel
    fast.set_tiling(fast.block, fast.xchunk, lvec=lvec)
    fields_ref = [p.copy(), p_prev.copy()]
    fields_fast = [p.copy(), p_prev.copy()]
    for step in range(3):
        ref(fields_ref[0], fields_ref[1])
        poison_layer_cells(fields_fast[1], L, L if ground else 0)
        fast(fields_fast[0], fields_fast[1])
        assert_close(fields_fast[1], fields_ref[1], f"p⁺ step {step}")
        assert_close(fast.p_aux, lay_ref.p_aux, f"split pressures step {step}")
        assert_close(fast.v_aux, lay_ref.v_aux, f"face velocities step {step}")
        fields_ref.reverse()
        fields_fast.reverse()


def test_layer_groups_need_the_build_and_the_grid(launcher, monkeypatch):
    """A layer group wider than the launcher's build holds, or than nz and the layer's width allow,
    is refused. The driver's default is the widest the grid allows up to the package's GPU build's
    (LAYER_VEC_BUILT, 4 as shipped): float32 on nz = 24 gets 4, float64 2 (16 bytes), and nz = 22
    (not a multiple of 4) 2; a build of 1 would get 1."""
    grid = make_grid((20, 18, 24), 4)
    odd = make_grid((20, 18, 22), 4)
    backend = CudaBackend(np, launcher)
    assert cuda_backend.LAYER_VEC_BUILT == 4
    for g, dtype, want in ((grid, np.float32, 4), (grid, np.float64, 2), (odd, np.float32, 2)):
        fast = CudaFieldUpdate(backend, g, AbsorbingLayer(g, 1.2, dtype), dtype)
        assert fast.lvec == want
    fast = CudaFieldUpdate(backend, odd, AbsorbingLayer(odd, 1.2, np.float32), np.float32)
    with pytest.raises(ValueError, match="lvec 4"):
        fast.set_tiling(64, 3, lvec=4)
    fast = CudaFieldUpdate(backend, grid, AbsorbingLayer(grid, 1.2, np.float32), np.float32)
    fast.set_tiling(64, 3, lvec=4)
    monkeypatch.setattr(launcher, "layer_vec_max", 2)
    with pytest.raises(ValueError, match="lvec 4"):
        fast.set_tiling(64, 3, lvec=4)
    monkeypatch.setattr(cuda_backend, "LAYER_VEC_BUILT", 1)
    assert CudaFieldUpdate(backend, grid, AbsorbingLayer(grid, 1.2, np.float32), np.float32).lvec == 1


@pytest.mark.parametrize("shape,L,dtype,zvec", [
    ((20, 18, 24), 4, np.float32, 4), ((20, 18, 24), 4, np.float64, 2), ((20, 18, 22), 4, np.float32, 2),
    ((20, 18, 24), 6, np.float32, 2), ((20, 18, 23), 4, np.float32, 1), ((20, 18, 24), 5, np.float64, 1)])
def test_default_z_width_is_the_widest_aligned_access(launcher, shape, L, dtype, zvec):
    """The interior's cells a thread along z: the widest of 4, 2, 1 whose access is at most 16 bytes
    and starts aligned in every row (it divides nz and the layer's width); a wider one is refused."""
    grid = make_grid(shape, L)
    fast = CudaFieldUpdate(CudaBackend(np, launcher), grid, AbsorbingLayer(grid, 1.2, dtype), dtype)
    assert fast.zvec == zvec
    with pytest.raises(ValueError, match="zvec"):
        fast.set_tiling(fast.block, fast.xchunk, 2 * zvec if zvec < 4 else 8)


@pytest.mark.parametrize("row_lanes,lanes", [(60, 32), (240, 32), (18, 8), (48, 16), (36, 8), (4, 8), (96, 32)])
def test_interior_tile_width_leaves_few_threads_idle(row_lanes, lanes):
    """Threads along z per interior tile: the most of 32, 16, 8 that leave at most an eighth of the
    tiles' threads idle (60 lanes: 64 threads, 4 idle), else the fewest idle (18 lanes: 24 threads)."""
    assert cuda_backend.z_lanes(row_lanes) == lanes


def test_misaligned_device_fields_are_refused(launcher):
    """A device field whose address is not a multiple of the interior's access (a view into a larger
    array, say) stops the launch with a message instead of faulting on the GPU."""
    grid = make_grid((20, 18, 24), 4)
    dtype = np.float32
    fast = CudaFieldUpdate(CudaBackend(np, launcher), grid, AbsorbingLayer(grid, 1.2, dtype), dtype)
    assert fast.zvec == 4

    class Misaligned:                                  # what a CuPy view 4 bytes in would report
        data = types.SimpleNamespace(ptr=(1 << 20) + 4)

    with pytest.raises(BackendError, match="aligned to 16 bytes"):
        fast(Misaligned(), Misaligned())


@pytest.mark.parametrize("l2_bytes,xchunk", [(0, cuda_backend.XCHUNK), (2**30, cuda_backend.XCHUNK_IN_L2)])
def test_default_tiling_follows_the_l2_cache(launcher, l2_bytes, xchunk):
    """The driver's tiling: CELL_BLOCK threads (fewer for a narrow interior: 32 · ⌈8/32⌉ = 32 here)
    and XCHUNK planes a thread, XCHUNK_IN_L2 where both fields fit in the device's L2 cache (capped
    by the interior's planes)."""
    backend = CudaBackend(np, launcher)
    backend.l2_bytes = l2_bytes
    grid = make_grid((40, 16, 16), 4)
    fast = CudaFieldUpdate(backend, grid, AbsorbingLayer(grid, 1.2, np.float64), np.float64)
    assert (fast.block, fast.xchunk) == (32, min(xchunk, 32))


@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("lvec", [1, 2])
def test_cell_kernel_writes_every_face(launcher, ground, lvec):
    """With A = 0 a face's new velocity does not depend on its old one, so a sentinel (1e30; NaN
    would survive 0·NaN) in the buffer the kernel writes must disappear from every face: each
    face has a cell that writes it, with layer threads of one cell or groups of 2 along z. With a
    ground the slab under the floor is skipped, faces too; the blocks' padding is never written."""
    grid = make_grid((17, 15, 16), 4, ground=ground)
    layer, p, p_prev = random_state(grid, np.float64, seed=3)
    layer.face_A[:] = 0.0
    fast = CudaFieldUpdate(CudaBackend(np, launcher), grid, layer, np.float64)
    fast.set_tiling(fast.block, fast.xchunk, lvec=lvec)
    fast._v[1][:] = 1e30
    fast(p, p_prev)
    written = fast.v_aux
    faces, skipped = np.zeros(written.size, dtype=bool), np.zeros(written.size, dtype=bool)
    for row, desc in enumerate(layer.face_desc):
        off, m = desc[0], np.prod(desc[4:7])
        faces[off:off + m] = True
        skipped[off:off + m] = ground and row // 3 == 4   # slab 4 (under the interior): its three face rows
    assert np.max(np.abs(written[faces & ~skipped])) < 1.0
    assert np.all(written[~faces | skipped] == 1e30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memory_count_matches_the_field_updates_buffers(dtype):
    """The layer's bytes that `wavesolve info` counts (AbsorbingLayer.estimate_bytes, exact) equal
    what the host layer holds (one copy of the face velocities) and what the GPU's field update
    holds (Backend.velocity_buffers = 2: it reads one copy and writes the other)."""
    grid = make_grid((23, 19, 17), 4)
    layer = AbsorbingLayer(grid, 1.2, dtype)
    item = np.dtype(dtype).itemsize
    assert AbsorbingLayer.estimate_bytes(grid, item, 1) == layer.nbytes
    backend = CudaBackend(np, launch=None)
    fast = CudaFieldUpdate(backend, grid, layer, dtype)
    assert AbsorbingLayer.estimate_bytes(grid, item, CudaBackend.velocity_buffers) == fast.nbytes
    assert backend.field_bytes(grid, item) == 2 * grid.cells * item + fast.nbytes


@pytest.mark.gpu
def test_cupy_available_memory_is_the_devices():
    """On a GPU: what the memory check reads (CupyBackend.available_bytes) is the device's free memory
    plus CuPy's unused pool, so it grows by what a freed array returns to the pool and stays within
    the device's total memory."""
    import cupy

    backend = resolve_backend("cupy")
    before = backend.available_bytes()
    held = cupy.zeros(2 ** 28, dtype=np.uint8)                    # 256 MiB from the pool
    during = backend.available_bytes()
    del held
    after = backend.available_bytes()
    total = cupy.cuda.runtime.memGetInfo()[1]
    assert 0 < during < before <= total
    assert abs(after - before) <= 2 ** 26 and after - during >= 2 ** 28


def test_cupy_out_of_memory_names_the_field_and_the_free_memory():
    """A field allocation that fails on the device (after the run's memory check passed: another
    process took the memory) raises BackendError naming the field's size and the device's free
    memory, not CuPy's bare error. Checked without a GPU: CuPy's allocator and memory query stand in."""
    from types import SimpleNamespace

    from wavesolve.backend import BackendError
    from wavesolve.kernels.cuda_backend import CupyBackend

    class OutOfMemoryError(Exception):
        pass

    def zeros(shape, dtype):
        raise OutOfMemoryError("out of memory to allocate")

    backend = object.__new__(CupyBackend)
    backend.xp = SimpleNamespace(zeros=zeros, cuda=SimpleNamespace(
        memory=SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
        runtime=SimpleNamespace(memGetInfo=lambda: (1.5e9, 80e9))))
    with pytest.raises(BackendError, match=r"\(512, 512, 512\) float32 field \(0\.54 GB; 1\.50 of 80\.00 GB free\)"
                       r".*another process"):
        backend.zeros((512, 512, 512), np.float32)


def _scene_ghosts(name: str):
    scene = load_scene(SCENES / name)
    return scene, GhostCells(scene.grid, [o.geometry for o in scene.objects])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["two_tone_sphere.toml", "validation/pulsating_sphere.toml"])
def test_ghost_kernel_equals_lu_solve(launcher, name, dtype):
    scene, ghosts = _scene_ghosts(name)
    rng = np.random.default_rng(7)
    p = rng.uniform(-1, 1, scene.grid.shape).astype(dtype)
    accel = rng.uniform(-50, 50, len(ghosts))
    ref = p.copy()
    ghosts.apply(ref, accel, scene.density)
    fast = p.copy()
    fast.reshape(-1)[ghosts.index] = np.nan            # poison: every ghost cell must be written
    dev = CudaBackend(np, launcher).ghost_cells(ghosts, dtype)
    dev.apply(fast, accel, scene.density)
    assert np.all(np.isfinite(fast))
    scale = np.max(np.abs(ref))
    err = np.abs(fast.astype(np.float64) - ref.astype(np.float64))
    assert np.max(err) <= GHOST_TOL[np.dtype(dtype)] * scale
    assert np.array_equal(fast.reshape(-1)[np.setdiff1d(np.arange(p.size), ghosts.index)],
                          p.reshape(-1)[np.setdiff1d(np.arange(p.size), ghosts.index)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_balance_kernels_equal_the_host_balance(launcher, dtype):
    """ws_ghost then ws_balance/ws_balance_add (wavesolve/flux_balance.py) against GhostCells.apply
    with the compiled balance, on balanced bodies with back values (a tilted plate thinner than a
    cell, a volume source reading its Q̇ from the boundary input) and two touching cubes balanced
    together: every cell to GHOST_TOL of the field's size (the warp's pairwise sums against the
    host's sequential ones), the back values too, and the net flux of each balanced group at its
    target (ρQ̇/h; zero for the cubes) to rounding: 1e-12 of the summed terms in float64, 1e-5 in
    float32 (each shifted value rounded to 6e-8 of itself, a few hundred faces)."""
    import trimesh

    from wavesolve.boundary import Body
    from wavesolve.flux_balance import net_flux, target_flux
    from wavesolve.meshes import Geometry, quaternion_matrix

    grid = make_grid((36, 34, 32), 4)
    box = trimesh.creation.box(extents=[0.05, 0.05, 0.05])
    tilt = quaternion_matrix(np.array([0.9, 0.1, 0.3, 0.2]) / np.linalg.norm([0.9, 0.1, 0.3, 0.2]))
    centre = grid.centres(np.array([[18, 17, 16]]))[0] + [0.0013, 0.0007, -0.0011]
    bodies = [Body(Geometry(trimesh.creation.box(extents=[0.06, 0.05, 0.006]), centre + [0, 0, 0.07], tilt),
                   balanced=True, volume=True),
              Body(Geometry(box, centre - [0.0255, 0, 0.05], np.eye(3)), balanced=True),
              Body(Geometry(box, centre + [0.0255, 0, -0.05], np.eye(3)), balanced=True)]
    ghosts = GhostCells(grid, bodies)
    bal = ghosts.balance()
    assert ghosts.n_back > 0 and np.any(bal.face_src < 0) and np.count_nonzero(bal.count_inv) == 2
    rng = np.random.default_rng(7)
    p = rng.uniform(-1, 1, grid.shape).astype(dtype)
    accel = rng.uniform(-50, 50, ghosts.inputs)
    accel[len(ghosts):] = 0.05                   # the objects' Q̇, m³/s²: ρQ̇/h of the order of the terms
    assert len(bal.vol_idx) == 1
    ref = p.copy()
    ghosts.apply(ref, accel, 1.2)
    fast = p.copy()
    dev = CudaBackend(np, launcher).ghost_cells(ghosts, dtype)
    dev.apply(fast, accel, 1.2)
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(fast.astype(np.float64) - ref.astype(np.float64))) <= GHOST_TOL[np.dtype(dtype)] * scale
    back = ghosts.thin_links()[3]
    assert np.max(np.abs(dev.back[:ghosts.n_back] - back)) <= GHOST_TOL[np.dtype(dtype)] * scale
    target = target_flux(bal, accel, 1.2 / grid.h)
    flux = (net_flux(bal, fast, dev.back[:ghosts.n_back]) - target)[bal.count_inv > 0]
    terms = balance_terms(bal, fast)
    assert np.all(np.abs(flux) <= (1e-12 if dtype == np.float64 else 1e-5) * (terms + np.abs(target).max()))
    assert np.abs(target).max() > 1e-2 * terms


def test_ghost_operator_is_the_inverse():
    _, ghosts = _scene_ghosts("two_tone_sphere.toml")
    M, N = ghost_operator(ghosts.W_gg, ghosts.W_gf, ghosts.offset)
    system = np.eye(len(ghosts)) - ghosts.W_gg.toarray()
    np.testing.assert_allclose(system @ M.toarray(), ghosts.W_gf.toarray(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(system @ N.toarray(), np.diag(ghosts.offset), rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probe_kernel_equals_reference(launcher, dtype):
    grid = make_grid((20, 18, 16), 4)
    rng = np.random.default_rng(11)
    probes = Probes(grid, rng.uniform(0.05, 0.12, (9, 3)))
    p = rng.uniform(-1, 1, grid.shape).astype(dtype)
    dev = CudaBackend(np, launcher).probes(probes)
    got = dev.sample(p)
    want = probes.sample(p)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15 * np.max(np.abs(want)))


def _peak_cases(dtype) -> list:
    """Fields for the peak kernel: sizes below, at and above PEAK_PARTS (some threads with no
    element, one each, several), the largest magnitude negative or positive, then ±inf and NaN
    placed in different partial maxima."""
    from wavesolve.kernels.cuda_backend import PEAK_PARTS

    rng = np.random.default_rng(5)
    cases = []
    for size in (1, 7, 1000, PEAK_PARTS, 3 * PEAK_PARTS + 5):
        a = rng.uniform(-1, 1, size).astype(dtype)
        a[rng.integers(size)] = -2.5                       # the largest magnitude, negative
        cases.append(a)
    b = rng.uniform(-1, 1, 2 * PEAK_PARTS + 3).astype(dtype)
    b[17] = 3.0
    cases.append(b)
    for specials in ((-np.inf,), (np.inf, np.nan), (np.nan,), (np.nan, -np.inf)):
        c = rng.uniform(-1, 1, 2 * PEAK_PARTS + 3).astype(dtype)
        for k, value in enumerate(specials):
            c[11 + 1000 * k] = value
        cases.append(c)
    cases.append(np.zeros((6, 5, 4), dtype))
    return cases


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_peak_kernel_equals_numpy(launcher, dtype):
    """max |a| of ws_peak (the block runner's instability check) equals NumPy's exactly (a maximum
    rounds nothing), NaN where a holds one, inf where an inf and no NaN."""
    backend = CudaBackend(np, launcher)
    for a in _peak_cases(dtype):
        got = backend.device_peak(a)
        want = np.max(np.abs(a))
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, want)
        assert backend.peak(a) == float(want) or (np.isnan(want) and np.isnan(backend.peak(a)))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_peak_kernel_equals_numpy(dtype):
    """On a GPU: ws_peak and CuPy's max of its partial maxima, as the host test above."""
    import cupy

    backend = resolve_backend("cupy")
    for a in _peak_cases(dtype):
        got = cupy.asnumpy(backend.device_peak(cupy.asarray(a)))
        np.testing.assert_array_equal(got, np.max(np.abs(a)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampling_in_the_cell_kernel_equals_apart(launcher, dtype):
    """The listeners sampled in the cell kernel's last segment (Backend.sample_and_update on the
    GPU: one launch) give exactly what the probe kernel gives before the update, and the update is
    unchanged: same arithmetic, so bit-equal. Listener count above one block, so the segment has
    several blocks."""
    grid = make_grid((20, 18, 16), 4)
    rng = np.random.default_rng(12)
    probes = Probes(grid, rng.uniform(0.05, 0.12, (300, 3)))
    backend = CudaBackend(np, launcher)
    dev = backend.probes(probes)
    fields = {}
    for fused in (False, True):
        layer, p, p_prev = random_state(grid, dtype, seed=5)
        update = CudaFieldUpdate(backend, grid, layer, dtype)
        samples = np.full(len(probes.cells), np.nan)
        if fused:
            got = backend.sample_and_update(update, dev, p, p_prev, samples)
            assert got is samples
        else:
            dev.sample(p, samples)
            update(p, p_prev)
        fields[fused] = (samples, p_prev, update.p_aux, update.v_aux)
    for a, b in zip(fields[False], fields[True]):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_driver_matches_numpy_on_a_scene(launcher, precision, tmp_path):
    """Whole steps through CudaBackend (host build) and the NumPy reference: sphere, block, layer."""
    text = (SCENES / "two_tone_sphere.toml").read_text().replace(
        "courant = 0.55", f"courant = 0.55\nprecision = \"{precision}\"")
    path = tmp_path / "scene.toml"
    path.write_text(text)
    scene = load_scene(path)
    ref = Simulation(scene, backend="numpy")
    fast = Simulation(scene, backend=CudaBackend(np, launcher))
    assert fast.p.dtype == np.dtype(precision)
    a, b = ref.run(60, progress=False), fast.run(60, progress=False)
    scale = np.max(np.abs(a))
    assert scale > 0
    tol = 1e-10 if precision == "float64" else 1e-5
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(fast.p, ref.p, rtol=0, atol=tol * np.max(np.abs(ref.p)))


def _short_validation_scene(tmp_path, precision: str):
    text = (SCENES / "validation" / "pulsating_sphere.toml").read_text()
    text = text.replace("duration = 0.004", "duration = 0.0008").replace(
        'precision = "float64"', f'precision = "{precision}"')
    path = tmp_path / f"pulsating_{precision}.toml"
    path.write_text(text)
    return load_scene(path)


@pytest.mark.gpu
@pytest.mark.parametrize("precision,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_cupy_backend_matches_numpy(tmp_path, precision, tol):
    """Shortened pulsating sphere: GPU and NumPy listener signals and final fields agree."""
    import wavesolve

    scene = _short_validation_scene(tmp_path, precision)
    ref = wavesolve.simulate(scene, backend="numpy", progress=False)
    gpu = wavesolve.simulate(scene, backend="cupy", progress=False)
    assert gpu.metadata["backend"] == "cupy"
    for name in ("near", "diagonal"):
        a, b = ref.listener(name), gpu.listener(name)
        assert np.max(np.abs(a)) > 0
        np.testing.assert_allclose(b, a, rtol=0, atol=tol * np.max(np.abs(a)))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cupy_fields_stay_on_device_in_their_precision(tmp_path, precision):
    import cupy

    scene = _short_validation_scene(tmp_path, precision)
    sim = Simulation(scene, backend="cupy")
    sim.run(20, progress=False)
    assert isinstance(sim.p, cupy.ndarray) and sim.p.dtype == np.dtype(precision)
    ref = Simulation(scene, backend="numpy")
    ref.run(20, progress=False)
    tol = 1e-10 if precision == "float64" else 1e-4
    np.testing.assert_allclose(cupy.asnumpy(sim.p), ref.p, rtol=0, atol=tol * np.max(np.abs(ref.p)))


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_driver_follows_moving_objects(request, where, precision, tmp_path):
    """A pulsating sphere moving at 3 m/s and a struck box beside it, clicking and ringing in one
    mode of net volume (balanced to its Q̇: flux_balance): ghost and fresh cells rebuilt every
    step, solved on the host from the fluid values copied down and written back by the device
    driver (host build, or CuPy on a GPU), then the box's balance on the device, must match the
    NumPy reference (tolerances in _compare_step_by_step)."""
    from wavesolve.meshes import Box, primitive_mesh
    from wavesolve.modes import ModeSet

    vertices = np.asarray(primitive_mesh(Box(primitive="box", size=[0.03] * 3)).vertices)
    ModeSet([2500.0], [0.05], (vertices @ np.diag([1.0, 0.3, 0.2]) / 0.01)[:, :, None]).save(tmp_path / "modes.h5")
    text = f"""
[simulation]
duration = 0.001
cell_size = 0.005
precision = "{precision}"
[domain]
size = 0.24
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.04, subdivisions = 3 }}
motion = {{ type = "constant_velocity", velocity = [3.0, 0.0, 0.0] }}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 2000.0, amplitude = 100.0 }}
[[objects]]
name = "box"
mesh = {{ primitive = "box", size = [0.03, 0.03, 0.03] }}
position = [-0.0701, 0.0013, 0.0007]
motion = {{ type = "constant_velocity", velocity = [-2.0, 1.0, 0.0] }}
[[objects.shaders]]
type = "acceleration_noise"
material = "steel"
impacts = [ {{ time = 0.0001, position = [0.015, 0.0, 0.0], impulse = [-0.002, 0.0, 0.0], speed = 1.0 }} ]
[[objects.shaders]]
type = "modal"
material = "steel"
modes = "modes.h5"
impacts = [ {{ time = 0.0001, position = [0.015, 0.0, 0.0], impulse = [-0.002, 0.0, 0.0], speed = 1.0 }} ]
[[listeners]]
name = "ear"
position = [0.08, 0.02, 0.0]
"""
    path = tmp_path / "moving.toml"
    path.write_text(text)
    fresh_steps = []
    _compare_step_by_step(load_scene(path), _driver(request, where), precision, 80,
                          each=lambda ref: fresh_steps.append(ref.ghosts.fresh.any()))
    assert any(fresh_steps)
    bal = Simulation(load_scene(path), backend="numpy").ghosts.balance()
    assert bal.count_inv.tolist()[0] == 0 and bal.count_inv[1] > 0 and len(bal.vol_idx) == 1


def _compare_step_by_step(scene, backend, precision: str, steps: int, each=None) -> tuple:
    """Step the NumPy reference and the CUDA driver (``backend``: the host build, or "cupy" on a
    GPU) together: listener samples and the final field agree to 1e-10 (float64) or 1e-5 (float32)
    of their largest value. ``each(ref)`` runs after every step. Returns (ref, fast)."""
    ref = Simulation(scene, backend="numpy")
    fast = Simulation(scene, backend=backend)
    a, b = [], []
    for _ in range(steps):
        a.append(ref.step())
        b.append(_on_host(fast.step()))
        if each is not None:
            each(ref)
    a, b = np.array(a), np.array(b)
    scale = np.max(np.abs(a))
    assert scale > 0
    tol = 1e-10 if precision == "float64" else 1e-5
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(_on_host(fast.p), ref.p, rtol=0, atol=tol * np.max(np.abs(ref.p)))
    return ref, fast


def _on_host(x):
    """A NumPy copy of a host or CuPy array."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_driver_handles_one_cell_thick_parts(request, where, precision, moving, tmp_path):
    """A plate one cell thick (5 mm at h = 5 mm) shaken along its normal, static or spinning: its
    back values (the far side's boundary condition) and the thin-part correction of the field go
    through the device kernels (host build, or CuPy on a GPU) and must match the NumPy reference; tolerances as in
    test_cuda_driver_follows_moving_objects (the links' adds may differ in order on a GPU)."""
    motion = 'motion = { type = "spin", axis = [0.3, 1.0, 0.2], rate = 20.0 }' if moving else ""
    path = tmp_path / "plate.toml"
    path.write_text(plate_scene(precision, motion))
    ref, _ = _compare_step_by_step(load_scene(path), _driver(request, where), precision, 60)
    assert ref.ghosts.n_back > 50 and len(ref.ghosts._link_fluid) > 50


def _blocks_scene(tmp_path, precision: str):
    """``kernel_cases.blocks_scene`` loaded from a file."""
    path = tmp_path / f"blocks_{precision}.toml"
    path.write_text(blocks_scene(precision))
    return load_scene(path)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_block_runner_matches_reference(launcher, precision, tmp_path, monkeypatch):
    """Steps run in recorded blocks (kernels/cuda_blocks.py: blocks of 8 steps and single steps,
    over two runs) on the host build give the NumPy reference's listener signals and final fields, with
    ground mirror rows, solid cells and thin-part corrections all on the kernels' side.
    Tolerances as in test_cuda_driver_follows_moving_objects."""
    from wavesolve.kernels import cuda_blocks

    monkeypatch.setattr(cuda_blocks, "BLOCK_STEPS", 8)
    launches = []
    replay = cuda_blocks.HostQueue.launch
    monkeypatch.setattr(cuda_blocks.HostQueue, "launch", lambda self, program: (launches.append(1), replay(self, program)))
    scene = _blocks_scene(tmp_path, precision)
    ref = Simulation(scene, backend="numpy")
    fast = Simulation(scene, backend=CudaBackend(np, launcher))
    assert ref.ghosts.n_back > 20 and fast.blocks_allowed()
    a = np.hstack([ref.run(27, progress=False), ref.run(33, progress=False)])
    b = np.hstack([fast.run(27, progress=False), fast.run(33, progress=False)])
    # 3 blocks and 3 single steps, then (p and p_prev swapped) 4 blocks and 1 step: blocks recorded
    # again for the other buffer holding pⁿ (a CUDA graph keeps the buffers it was recorded with)
    assert len(launches) == 7 and fast.n == ref.n == 60 and len(fast._block_runner().programs) == 2
    scale = np.max(np.abs(a))
    assert scale > 0 and np.all(np.abs(b[:, -4:]) > 0)
    tol = 1e-10 if precision == "float64" else 1e-5
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * scale)
    for x, y in ((fast.p, ref.p), (fast.p_prev, ref.p_prev)):
        np.testing.assert_allclose(x, y, rtol=0, atol=tol * np.max(np.abs(ref.p)))


def test_block_runner_stops_for_pressure_slices(launcher, tmp_path, monkeypatch):
    """A chunk in recorded blocks of 8 steps (host build) whose slices fall due at steps that are
    not multiples of 8 (13, 45, 100; a recorded block cannot stop inside itself): the run stops
    at each, and its slices and listener samples are the NumPy reference's (float64, 1e-10 of
    the largest value as in test_block_runner_matches_reference)."""
    from wavesolve.chunks import plan_chunks, run_chunk
    from wavesolve.kernels import cuda_blocks

    monkeypatch.setattr(cuda_blocks, "BLOCK_STEPS", 8)
    launches = []
    replay = cuda_blocks.HostQueue.launch
    monkeypatch.setattr(cuda_blocks.HostQueue, "launch", lambda self, program: (launches.append(1), replay(self, program)))
    dt = _blocks_scene(tmp_path, "float64").grid.dt
    path = tmp_path / "sliced.toml"
    path.write_text(blocks_scene("float64") + '[[slices]]\nname = "side"\naxis = "y"\nposition = 0.0\n'
                    f"times = [{13 * dt!r}, {45 * dt!r}, {100 * dt!r}]\n")
    scene = load_scene(path)
    assert scene.slices[0].steps == (13, 45, 100)
    plan = plan_chunks(scene, 1)
    ref = run_chunk(scene, plan, 0, backend="numpy")
    fast = run_chunk(scene, plan, 0, backend=CudaBackend(np, launcher))
    assert len(launches) > 10
    a, b = ref.slices["side"], fast.slices["side"]
    assert np.all(np.max(np.abs(a), axis=(1, 2)) > 0)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.max(np.abs(a)))
    np.testing.assert_allclose(fast.data, ref.data, rtol=0, atol=1e-10 * np.max(np.abs(ref.data)))


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_block_runner_takes_the_accelerations_of_single_steps(launcher, precision, tmp_path, monkeypatch):
    """A run in recorded blocks (host build; blocks of 8 steps, over runs of 27 and 33 steps, so
    that blocks start at steps that are not multiples of 8) takes its boundary accelerations from
    the same kept blocks of MOTION_BLOCK steps as the same run step by step: the shaders are asked
    for the same blocks (first step, length), and listener samples and fields are bit-equal. Until
    the eighteenth session the runner asked the shaders for its own 8 steps at each block's start,
    which a shader whose block values depend on where the block starts (the modal shader steps its
    modes from the block's first time) rounds differently."""
    from wavesolve.kernels import cuda_blocks

    monkeypatch.setattr(cuda_blocks, "BLOCK_STEPS", 8)
    scene = _blocks_scene(tmp_path, precision)
    runs = {}
    for name in ("blocks", "steps"):
        sim = Simulation(scene, backend=CudaBackend(np, launcher))
        if name == "steps":
            sim._blocks = None                       # no block runner: every step on its own
        asked = []
        block = sim.boundary_acceleration_block

        def spy(times, out=None, block=block, asked=asked, dt=sim.grid.dt):
            asked.append((int(round(times[0] / dt)), len(times)))
            return block(times, out)

        sim.boundary_acceleration_block = spy
        samples = np.hstack([sim.run(27, progress=False), sim.run(33, progress=False)])
        runs[name] = (sim, samples, asked)
    (fast, a, asked_fast), (ref, b, asked_ref) = runs["blocks"], runs["steps"]
    assert fast._block_runner() is not None and ref._block_runner() is None
    assert asked_fast == asked_ref == [(0, MOTION_BLOCK)]
    assert np.max(np.abs(a)) > 0
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast.p, ref.p)
    np.testing.assert_array_equal(fast.p_prev, ref.p_prev)


def test_block_runner_stops_on_instability(launcher, tmp_path, monkeypatch):
    """The peak |p| read after each block trips the instability check (here with the threshold
    lowered to 1 µPa, which the pulsating ball exceeds within the first blocks)."""
    from wavesolve import simulation
    from wavesolve.errors import InstabilityError
    from wavesolve.kernels import cuda_blocks

    monkeypatch.setattr(cuda_blocks, "BLOCK_STEPS", 8)
    monkeypatch.setattr(cuda_blocks, "INSTABILITY_PRESSURE", 1e-6)
    monkeypatch.setattr(simulation, "INSTABILITY_PRESSURE", 1e-6)
    fast = Simulation(_blocks_scene(tmp_path, "float64"), backend=CudaBackend(np, launcher))
    with pytest.raises(InstabilityError, match="unstable"):
        fast.run(200, progress=False)
    assert fast.n < 200


@pytest.mark.gpu
@pytest.mark.parametrize("precision,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_cupy_blocks_match_numpy(tmp_path, precision, tol):
    """On a GPU: 129 steps (a recorded block of 128 — a CUDA graph — and one single step), then 300
    with p and p_prev swapped (two blocks recorded for the other buffer, 44 single steps), against
    NumPy (tolerances as test_cupy_backend_matches_numpy; float32 graphs round as single steps).
    The field's tolerance is ``_field_tolerance``'s."""
    import cupy

    scene = _blocks_scene(tmp_path, precision)
    ref = Simulation(scene, backend="numpy")
    gpu = Simulation(scene, backend="cupy")
    a = np.hstack([ref.run(129, progress=False), ref.run(300, progress=False)])
    b = np.hstack([gpu.run(129, progress=False), gpu.run(300, progress=False)])
    assert len(gpu._block_runner().programs) == 2 and gpu.n == 429
    scale = np.max(np.abs(a))
    assert scale > 0
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(cupy.asnumpy(gpu.p), ref.p, rtol=0, atol=_field_tolerance(ref, tol))


def _field_tolerance(ref: Simulation, tol: float) -> float:
    """Pa: how far two runs of one scene whose ghost values round differently may differ in the
    field after some hundred steps: ``tol`` · max |p|, or in float32 20 roundings (2⁻²⁴ each) of the
    layer's largest split pressure, whichever is larger. The split pressures drift under a net
    outflow (the pulsating ball's: its surface velocity, a Gaussian, has a non-zero mean) to far
    above p, which is their small sum: 2.5 Pa against max |p| = 6e-3 Pa in _blocks_scene after
    429 steps, so float32 keeps p only to about 2⁻²⁴ · 2.5 Pa there. The host build of the CUDA
    source (whose arithmetic is the GPU's, bit for bit) differed from NumPy by 5.2 such roundings
    after 429 steps (1.25e-4 of max |p|: test_cuda_host_blocks_match_numpy_long), 3.2 before p_z
    was derived from p (fourteenth session)."""
    if ref.dtype != np.float32:
        return tol * float(np.max(np.abs(ref.p)))
    layer = ref.layer
    split = max(float(np.max(np.abs(a))) for p_split, _ in layer.views(layer.p_aux, layer.v_aux) for a in p_split)
    return max(tol * float(np.max(np.abs(ref.p))), 20 * 2.0 ** -24 * split)


@pytest.mark.parametrize("precision,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_cuda_host_blocks_match_numpy_long(launcher, tmp_path, precision, tol):
    """As test_cupy_blocks_match_numpy, 429 steps, with the host build of the CUDA source (its
    recorded blocks replayed on the host): the listener signals to ``tol`` of their peak, the field
    to ``_field_tolerance`` (with ``tol`` · max |p| alone, float32 fails here: 1.25e-4 of max |p|)."""
    scene = _blocks_scene(tmp_path, precision)
    ref = Simulation(scene, backend="numpy")
    fast = Simulation(scene, backend=CudaBackend(np, launcher))
    a = ref.run(429, progress=False)
    b = fast.run(429, progress=False)
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * np.max(np.abs(a)))
    np.testing.assert_allclose(fast.p, ref.p, rtol=0, atol=_field_tolerance(ref, tol))


@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_driver_follows_a_travelling_box(launcher, precision, tmp_path, ground):
    compare_travelling(tmp_path, precision, CudaBackend(np, launcher), ground)


@pytest.mark.gpu
@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cupy_travelling_box_matches_numpy(tmp_path, precision, ground):
    """On a GPU, where the layer's buffers are device copies that the shifts must move."""
    compare_travelling(tmp_path, precision, "cupy", ground)
