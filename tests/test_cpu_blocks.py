"""Steps run in compiled blocks on the CPU (kernels/cpu_blocks.py) against the same steps run one
at a time through Python, and against the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import blocks_scene
from threadpoolctl import threadpool_info

from wavesolve import simulation
from wavesolve.backend import Backend
from wavesolve.errors import InstabilityError
from wavesolve.scene import parse_scene
from wavesolve.simulation import Simulation

pytest.importorskip("numba")
from wavesolve.backend import NumbaBackend  # noqa: E402
from wavesolve.kernels.cpu_blocks import CompiledBlocks  # noqa: E402


def _one_at_a_time(monkeypatch) -> None:
    """Numba simulations that first ask for their block runner from now on (``_block_runner`` makes
    it once, at the first call) run every step through Simulation._step."""
    monkeypatch.setattr(NumbaBackend, "block_runner", Backend.block_runner)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_compiled_blocks_equal_single_steps(precision, monkeypatch):
    """The same run, in three calls of 57, 200 and 71 steps (pieces that end between stability
    checks and between the shaders' kept blocks of 128 steps), in compiled blocks and step by step:
    listener samples (Pa) and both fields bit for bit equal, since both run the same compiled kernels
    in the same order on the same accelerations. Against the NumPy reference the samples and fields
    agree to 1e-10 of their largest value in float64 and 1e-5 in float32 (the tolerances of the GPU
    block runner's test: the fused step is bit-equal to the reference per step, and the ghost
    operator's float64 sums round in another order than the reference's solve)."""
    scene = parse_scene(blocks_scene(precision), "blocks.toml")
    fast = Simulation(scene, backend="numba")
    ref = Simulation(scene, backend="numpy")
    assert isinstance(fast._block_runner(), CompiledBlocks) and fast.ghosts.n_back > 20 and scene.grid.ground
    bal = fast.ghosts.balance()                # the plate is balanced, back values included, to its Q̇
    assert np.count_nonzero(bal.count_inv) == 1 and np.any(bal.face_src < 0) and len(bal.vol_idx) == 1
    _one_at_a_time(monkeypatch)
    slow = Simulation(scene, backend="numba")
    assert slow._block_runner() is None
    blas_threads = []
    ask = fast.boundary_acceleration_block

    def spy(times, out=None):            # the shaders run with BLAS held to one thread (Simulation.run)
        blas_threads.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return ask(times, out)

    monkeypatch.setattr(fast, "boundary_acceleration_block", spy)
    pieces = (57, 200, 71)
    a = np.hstack([fast.run(n, progress=False) for n in pieces])
    assert blas_threads and set(blas_threads) == {1}
    b = np.hstack([slow.run(n, progress=False) for n in pieces])
    r = np.hstack([ref.run(n, progress=False) for n in pieces])
    assert fast.n == slow.n == sum(pieces)
    assert np.max(np.abs(a[:, -50:])) > 0
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast.p, slow.p)
    np.testing.assert_array_equal(fast.p_prev, slow.p_prev)
    tol = 1e-10 if precision == "float64" else 1e-5
    np.testing.assert_allclose(a, r, rtol=0, atol=tol * np.max(np.abs(r)))
    for x, y in ((fast.p, ref.p), (fast.p_prev, ref.p_prev)):
        np.testing.assert_allclose(x, y, rtol=0, atol=tol * np.max(np.abs(ref.p)))


def test_compiled_blocks_stop_where_single_steps_stop(monkeypatch):
    """With the instability threshold lowered to 1 µPa (the pulsating ball exceeds it within the
    first checks) a run in compiled blocks raises at the same step as one step by step: the peak is
    checked at every multiple of INSTABILITY_CHECK_INTERVAL in both."""
    monkeypatch.setattr(simulation, "INSTABILITY_PRESSURE", 1e-6)
    scene = parse_scene(blocks_scene("float64"), "blocks.toml")
    fast = Simulation(scene, backend="numba")
    with pytest.raises(InstabilityError, match="unstable"):
        fast.run(300, progress=False)
    _one_at_a_time(monkeypatch)
    slow = Simulation(scene, backend="numba")
    with pytest.raises(InstabilityError, match="unstable"):
        slow.run(300, progress=False)
    assert 0 < fast.n == slow.n < 300 and fast.n % simulation.INSTABILITY_CHECK_INTERVAL == 0


def test_no_compiled_blocks_without_a_static_operator(monkeypatch):
    """Ghost cells whose values come from another solver than the static operator (the LU of a
    large coupled group) get no block runner: their steps run one at a time. (Moving objects and
    point sources never ask for one: Simulation.blocks_allowed.)"""
    scene = parse_scene(blocks_scene("float64"), "blocks.toml")
    sim = Simulation(scene, backend="numba")
    monkeypatch.setattr(type(sim.ghosts), "compiled_operator", lambda self: None)
    assert NumbaBackend().block_runner(sim) is None


def test_compiled_blocks_without_objects(monkeypatch):
    """A box with no object (no ghost rows: the operator's arrays are empty and the blocks read no
    accelerations) and a pulse set by hand: 70 steps in compiled blocks and step by step, listener
    samples and fields bit for bit equal, and the pulse reached the listener."""
    text = """
[simulation]
duration = 0.01
cell_size = 0.01
precision = "float32"
[domain]
size = 0.3
[[listeners]]
name = "l"
position = [0.05, 0.02, 0.0]
"""
    scene = parse_scene(text, "free.toml")
    fast = Simulation(scene, backend="numba")
    assert isinstance(fast._block_runner(), CompiledBlocks) and not len(fast.ghosts)
    _one_at_a_time(monkeypatch)
    slow = Simulation(scene, backend="numba")
    assert slow._block_runner() is None
    for sim in (fast, slow):
        sim.p[20, 20, 20] = 1.0
    a, b = fast.run(70, progress=False), slow.run(70, progress=False)
    assert np.max(np.abs(a)) > 0
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast.p, slow.p)
