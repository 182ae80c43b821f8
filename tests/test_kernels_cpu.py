"""The compiled CPU step (Numba) against the NumPy reference, and the backend switch.

Random p, p⁻ and random absorbing-layer state; every element of p⁺ and of the layer's auxiliary
fields is compared (tolerances in kernel_cases.py); layer cells of the output are poisoned with NaN
before each run so an element the kernel forgets to write fails.
"""
from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import (SHAPES, assert_close, assert_layers_close, compare_travelling, copy_layer, make_grid,
                          plate_scene, poison_layer_cells, random_state)

from wavesolve.backend import BACKENDS, BackendError, resolve_backend
from wavesolve.kernels.reference import ReferenceUpdate
from wavesolve.scene import parse_scene
from wavesolve.simulation import Simulation

pytest.importorskip("numba")
from wavesolve.kernels.cpu import FusedUpdate  # noqa: E402


@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,L", SHAPES)
def test_fused_step_equals_reference(shape, L, dtype, ground):
    """With a ground the cells below the floor are skipped by both (left as they were). The compiled
    step reads its z-slabs stored y fastest; the reference's are in C order."""
    grid = make_grid(shape, L, ground=ground)
    lay_ref, p, p_prev = random_state(grid, dtype, seed=sum(shape))
    lay_fast = copy_layer(grid, lay_ref, z_slabs_y_fastest=True)
    ref_update, fast_update = ReferenceUpdate(grid, lay_ref, dtype), FusedUpdate(grid, lay_fast, dtype)
    fields_ref = [p.copy(), p_prev.copy()]
    fields_fast = [p.copy(), p_prev.copy()]
    for step in range(3):   # several steps: the layer state carries over
        ref_update(fields_ref[0], fields_ref[1])
        poison_layer_cells(fields_fast[1], L, L if ground else 0)
        fast_update(fields_fast[0], fields_fast[1])
        assert_close(fields_fast[1], fields_ref[1], f"p⁺ step {step}")
        assert_layers_close(lay_fast, lay_ref, f"step {step}")
        fields_ref.reverse()
        fields_fast.reverse()


@pytest.mark.parametrize("chunks", [[0, 23], [0, 2, 3, 11, 19, 21, 23], [0, 4, 19, 23], [0, 1, 22, 23],
                                    list(range(24))])
@pytest.mark.parametrize("ground", [False, True])
def test_fused_step_equals_reference_for_any_split_among_threads(chunks, ground):
    """The compiled step splits the x-planes into chunks, one per thread; the x-faces between two
    chunks are updated before the chunks start, the rest by each chunk as it goes. Splits inside
    the x-slabs, at their edges (planes 4 and 19 of 23 with a layer of 4), one plane long, and
    none, and one plane each (what ``even_chunks`` gives 40 threads for 23 planes), all give the
    reference's result (tolerances as in test_fused_step_equals_reference)."""
    from wavesolve.kernels.cpu import even_chunks

    assert list(even_chunks(23, 40)) == list(range(24))          # no empty chunk
    assert list(even_chunks(23, 2)) == [0, 11, 23]
    grid = make_grid((23, 19, 27), 4, ground=ground)
    lay_ref, p, p_prev = random_state(grid, np.float64, seed=7)
    lay_fast = copy_layer(grid, lay_ref, z_slabs_y_fastest=True)
    ref_update, fast_update = ReferenceUpdate(grid, lay_ref, np.float64), FusedUpdate(grid, lay_fast, np.float64)
    fields_ref = [p.copy(), p_prev.copy()]
    fields_fast = [p.copy(), p_prev.copy()]
    fast_update.chunks = np.array(chunks, dtype=np.int64)
    for step in range(2):
        ref_update(fields_ref[0], fields_ref[1])
        poison_layer_cells(fields_fast[1], 4, 4 if ground else 0)
        fast_update(fields_fast[0], fields_fast[1])
        assert_close(fields_fast[1], fields_ref[1], f"p⁺ step {step}")
        assert_layers_close(lay_fast, lay_ref, f"step {step}")
        fields_ref.reverse()
        fields_fast.reverse()


def test_backend_switch():
    assert BACKENDS == ("auto", "numpy", "numba", "cupy")
    assert resolve_backend("numpy").name == "numpy"
    assert resolve_backend("numba").name == "numba"
    assert resolve_backend("auto").name in ("cupy", "numba")
    with pytest.raises(BackendError, match="unknown backend 'fortran'"):
        resolve_backend("fortran")


def test_picks_gpu_agrees_with_the_backend_auto_resolves_to():
    """picks_gpu (the local chunk runner's question, answered without starting a GPU) names the same
    kind of device as resolve_backend for every request that can run here."""
    from wavesolve.backend import picks_gpu

    assert not picks_gpu("numpy") and not picks_gpu("numba") and picks_gpu("cupy")
    assert picks_gpu("auto") == (resolve_backend("auto").name == "cupy")


def test_core_imports_neither_numba_nor_cupy():
    import subprocess
    import sys

    code = ("import sys, wavesolve, wavesolve.simulation, wavesolve.backend, wavesolve.cli; "
            "print('numba' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_backend_keeps_precision(backend, precision):
    """The dtype each backend actually produces: fields, layer state and the stepped result."""
    scene = parse_scene(f"""
[simulation]
duration = 2e-4
cell_size = 0.01
precision = "{precision}"
[domain]
size = 0.1
absorbing_layer = 4
[[listeners]]
name = "c"
position = [0.0, 0.0, 0.0]
""", "dtype.toml")
    sim = Simulation(scene, backend=backend)
    sim.p[4, 4, 4] = 1.0
    sim.run(3, progress=False)
    want = np.dtype(precision)
    assert sim.backend == backend
    for arr in (sim.p, sim.p_prev, sim.layer.p_aux, sim.layer.v_aux):
        assert arr.dtype == want


def test_numba_backend_matches_numpy_on_a_scene_with_objects():
    """Whole steps (ghost cells, sources, solid cells, layer) with the two CPU backends agree.

    The pressure field (float32, Pa) agrees to 1e-30 Pa absolute and one part in 10⁶: the
    compiled step flushes subnormal values (|p| < 1.2e-38 Pa, which the leapfrog's precursor
    ahead of the wave front passes through) to zero where NumPy keeps them. Those differences
    reach 6e-36 Pa in these 40 steps (measured); rtol allows an ulp-level rounding flip that one
    of them may cause in a larger value and its spread."""
    from conftest import SCENES

    from wavesolve import load_scene

    scene = load_scene(SCENES / "two_tone_sphere.toml")
    sims = [Simulation(scene, backend=b) for b in ("numpy", "numba")]
    out = [s.run(40, progress=False) for s in sims]
    assert np.max(np.abs(out[0])) > 0
    np.testing.assert_allclose(out[1], out[0], rtol=0, atol=1e-5 * np.max(np.abs(out[0])))
    np.testing.assert_allclose(sims[1].p, sims[0].p, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_step_flushes_subnormals_and_leaves_the_caller_ieee(dtype):
    """A subnormal pressure (half the smallest normal number) in an interior cell and in a layer
    cell: the reference's p⁺ holds subnormals around both, the compiled step's is exactly zero
    everywhere (flush-to-zero and denormals-are-zero, kernels/subnormals.py). Afterwards this
    thread still computes IEEE subnormals (the kernel restored its mode)."""
    from wavesolve.kernels.subnormals import X86_64

    if not X86_64:
        pytest.skip("subnormals are flushed only on x86-64")
    grid = make_grid((21, 19, 23), 4)
    tiny = np.finfo(dtype).tiny / 2
    p = np.zeros(grid.shape, dtype)
    p[10, 9, 11] = tiny                 # interior
    p[1, 9, 11] = tiny                  # an x-slab cell
    lay_ref, _, _ = random_state(grid, dtype, seed=3)
    lay_ref.p_aux[:] = 0
    lay_ref.v_aux[:] = 0
    lay_fast = copy_layer(grid, lay_ref, z_slabs_y_fastest=True)
    out_ref, out_fast = np.zeros_like(p), np.zeros_like(p)
    ReferenceUpdate(grid, lay_ref, dtype)(p, out_ref)
    FusedUpdate(grid, lay_fast, dtype)(p, out_fast)
    assert np.count_nonzero(out_ref[8:13, 7:12, 9:14]) >= 7         # the cell and its six neighbours
    assert np.count_nonzero(out_ref[:4]) > 0
    assert np.count_nonzero(out_fast) == 0
    assert np.count_nonzero(lay_fast.p_aux) == np.count_nonzero(lay_fast.v_aux) == 0
    assert np.array([tiny], dtype)[0] * dtype(0.5) > 0                # NumPy here: still IEEE
    # the pair on this very thread (the suite's workqueue threads never run a body here)
    from numba import njit

    from wavesolve.kernels.subnormals import flush_subnormals, restore_subnormals

    @njit
    def halve_flushed(x):
        mode = flush_subnormals()
        y = x[0] * x[1]
        restore_subnormals(mode)
        return y

    assert halve_flushed(np.array([tiny, 0.5], dtype)) == 0
    assert np.array([tiny], dtype)[0] * dtype(0.5) > 0


@pytest.mark.parametrize("ground", [False, True])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_numba_travelling_box_matches_numpy(tmp_path, precision, ground):
    """The compiled step's layer stores its z-slabs y fastest; the box's shifts move them through
    the layer's slab views (following.py), so the run equals NumPy's; so too over a ground."""
    compare_travelling(tmp_path, precision, "numba", ground)


@pytest.mark.parametrize("size", [1, 63, 64, 65, 4099])
def test_peak_finds_the_largest_magnitude_anywhere(size):
    """max |p| is split into 64 chunks (some empty for small fields): the largest magnitude,
    placed at every position in turn of a random field, is found exactly (float32 and float64)."""
    numba_backend = resolve_backend("numba")
    rng = np.random.default_rng(size)
    for dtype in (np.float32, np.float64):
        p = rng.uniform(-1, 1, size).astype(dtype)
        for where in sorted({0, size // 3, size // 2, size - 1} | set(rng.integers(0, size, 5).tolist())):
            q = p.copy()
            q[where] = -7.5
            assert numba_backend.peak(q) == 7.5


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_close_update_equals_numpy(tmp_path, precision):
    """The numba backend's closing pass in one compiled call (the thin-part correction
    out += λ²(p_back − p_g) at a plate one cell thick, then the solid cells held at zero) against
    NumPy's (np.add.at, then the zeroing): bit for bit, as both round λ²(p_back − p_g) from float64
    to the field's dtype and add in link order; random fields and back values. Then the same links
    with each fluid cell listed twice more (a cell between two thin parts is corrected once per
    link: np.add.at accumulates)."""
    (tmp_path / "plate.toml").write_text(plate_scene(precision))
    from wavesolve import load_scene

    sim = Simulation(load_scene(tmp_path / "plate.toml"), backend="numpy")
    ghosts = sim.ghosts
    fluid, _, _, back_values = ghosts.thin_links()
    assert len(fluid) > 50
    rng = np.random.default_rng(8)
    back_values[:] = rng.normal(size=back_values.shape)
    p = rng.normal(size=sim.p.shape).astype(sim.dtype)
    before = rng.normal(size=sim.p.shape).astype(sim.dtype)
    solid = sim._hold_zero
    assert len(solid) > 0

    def closed(backend: str) -> np.ndarray:
        out = before.copy()
        resolve_backend(backend).close_update(ghosts, p, out, sim._lam2, solid)
        return out

    fast = closed("numba")
    np.testing.assert_array_equal(fast, closed("numpy"))
    assert np.count_nonzero(fast != before) > len(solid)     # corrected cells besides the zeroed
    # repeated links: three per fluid cell, through different ghost cells and back values
    order = rng.permutation(3 * len(fluid))
    ghosts._link_fluid = np.tile(fluid, 3)[order]
    ghosts._link_row = np.tile(ghosts._link_row, 3)[order]
    ghosts._link_cell = rng.permutation(np.tile(ghosts._link_cell, 3))
    np.testing.assert_array_equal(closed("numba"), closed("numpy"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_peak_zero_cells_and_mirror_floor_equal_numpy(dtype):
    """The numba backend's max |p| (the instability check), solid-cell zeroing and the floor's
    mirror rows against NumPy's:
    the peak exactly (a maximum rounds nothing), inf for a field holding an inf, NaN for one
    holding a NaN."""
    numba_backend, numpy_backend = resolve_backend("numba"), resolve_backend("numpy")
    rng = np.random.default_rng(5)
    p = rng.normal(size=(17, 23, 29)).astype(dtype)
    p[3, 4, 5] = -40.0                      # the peak is a negative value
    assert numba_backend.peak(p) == numpy_backend.peak(p) == 40.0
    for bad in (np.nan, np.inf, -np.inf):
        q = p.copy()
        q[16, 22, 28] = bad                 # the very last element
        assert not np.isfinite(numba_backend.peak(q)) and not np.isfinite(numpy_backend.peak(q))
        if np.isinf(bad):                   # an inf reads inf (as NumPy's); with a NaN too, NaN
            assert numba_backend.peak(q) == numpy_backend.peak(q) == np.inf
            q[0, 0, 0] = np.nan
            assert np.isnan(numba_backend.peak(q)) and np.isnan(numpy_backend.peak(q))
    index = rng.choice(p.size, 500, replace=False)
    a, b = p.copy(), p.copy()
    numba_backend.zero_cells(a, index)
    numpy_backend.zero_cells(b, index)
    np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(a) == p.size - 500
    # the floor's mirror rows (a ground): a copy, so equal to the element; a thin box (nz − 2L < L)
    # mirrors only its nz − 2L interior rows
    for shape, L in (((17, 23, 29), 4), ((17, 23, 11), 4)):
        grid = make_grid(shape, L, ground=True)
        before = rng.normal(size=shape).astype(dtype)
        a, b = before.copy(), before.copy()
        numba_backend.mirror_floor(a, grid)
        numpy_backend.mirror_floor(b, grid)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, before)                  # rows were written


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_memory_count_matches_what_a_simulation_holds(backend, precision):
    """Backend.field_bytes (what `wavesolve info` and bench/memory.py count) equals, byte for byte,
    the arrays of a free-field Simulation that grow with the grid: p, p⁻, the layer's auxiliaries and
    the Numba step's z-slab tiles and scratch."""
    scene = parse_scene(f"[simulation]\nduration = 1e-3\ncell_size = 0.01\nprecision = \"{precision}\"\n"
                        "[domain]\nsize = [0.3, 0.25, 0.2]\nabsorbing_layer = 4\n"
                        "[[listeners]]\nname = \"c\"\nposition = [0.0, 0.0, 0.0]\n", "<memory>")
    sim = Simulation(scene, backend=backend)
    held = sim.p.nbytes + sim.p_prev.nbytes + sim.layer.nbytes
    if isinstance(sim._update, FusedUpdate):
        held += sim._update.tiles.nbytes + sim._update.scratch.nbytes
    assert sim.engine.field_bytes(sim.grid, np.dtype(precision).itemsize) == held
