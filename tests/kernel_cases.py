"""Shared cases for the kernel tests: grids, random states, poisoning and the element-wise check.

Tolerances (every element is checked, fields and auxiliary state):
- float64: |fast − ref| ≤ 1e-12 · max|ref| per element. The compiled kernels do the reference's
  operations in the reference's order without fused multiply-add, so they agree to the last bit
  in practice; 1e-12 leaves room for a compiler that contracts to FMA (≈ 1e-16 per operation).
- float32: |fast − ref| ≤ 5e-6 · max|ref| per element. One element's update takes about ten
  roundings of intermediates no larger than ~8 × max|p| (the Laplacian's six neighbours and 6p),
  each within 2⁻²⁴ ≈ 6e-8 relative, so a kernel that rounds differently from the reference (FMA,
  another summation order) stays below 10 × 8 × 6e-8 ≈ 5e-6 of max|p|. Kernels that keep the
  reference's order (the Numba step and the host build of the CUDA source) are bit-equal.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from wavesolve.absorbing import AbsorbingLayer
from wavesolve.grid import Grid

F64_TOL = 1e-12
F32_TOL = 5e-6
TOL = {np.dtype(np.float64): F64_TOL, np.dtype(np.float32): F32_TOL}

#: Grid shapes and layer thicknesses: uneven sizes, thin and thick layers.
SHAPES = [((23, 19, 27), 4), ((30, 26, 21), 7)]


def make_grid(shape: tuple[int, int, int], layer: int, courant: float = 0.55, ground: bool = False) -> Grid:
    h, c = 0.01, 343.0
    return Grid(h=h, dt=courant * h / c, sound_speed=c, shape=shape, layer=layer, origin=(0.0, 0.0, 0.0),
                ground=ground)


def random_state(grid: Grid, dtype, seed: int = 0):
    """(layer, p, p_prev) with random fields and random auxiliary state in the layer."""
    rng = np.random.default_rng(seed)
    layer = AbsorbingLayer(grid, 1.2, np.dtype(dtype))
    layer.p_aux[:] = rng.uniform(-1, 1, layer.p_aux.size)
    layer.v_aux[:] = rng.uniform(-1, 1, layer.v_aux.size) * 1e-3   # v ~ p / (ρc)
    p = rng.uniform(-1, 1, grid.shape).astype(dtype)
    p_prev = rng.uniform(-1, 1, grid.shape).astype(dtype)
    return layer, p, p_prev


def copy_layer(grid: Grid, layer: AbsorbingLayer, z_slabs_y_fastest: bool = False) -> AbsorbingLayer:
    """A layer with ``layer``'s state, stored in the given order (copied through the slab views)."""
    other = AbsorbingLayer(grid, 1.2, layer.p_aux.dtype, z_slabs_y_fastest)
    other.p_aux[:] = layer.p_aux           # the blocks' padding too (absorbing.PACK_ALIGN: same places)
    other.v_aux[:] = layer.v_aux
    for (p_dst, v_dst), (p_src, v_src) in zip(other.views(other.p_aux, other.v_aux),
                                              layer.views(layer.p_aux, layer.v_aux)):
        for dst, src in zip(p_dst + v_dst, p_src + v_src):
            dst[...] = src
    return other


def assert_layers_close(fast: AbsorbingLayer, ref: AbsorbingLayer, what: str) -> None:
    """Every split pressure and face velocity of ``fast`` against ``ref``, slab by slab (any storage order)."""
    for s, ((p_f, v_f), (p_r, v_r)) in enumerate(zip(fast.views(fast.p_aux, fast.v_aux),
                                                     ref.views(ref.p_aux, ref.v_aux))):
        for a in range(3):
            if a < len(p_r):
                assert_close(p_f[a], p_r[a], f"{what}: split pressure {'xyz'[a]} of slab {s}")
            assert_close(v_f[a], v_r[a], f"{what}: face velocity {'xyz'[a]} of slab {s}")


def poison_layer_cells(out: np.ndarray, L: int, floor: int = 0) -> None:
    """NaN in every layer cell of ``out`` (pure outputs) but the slab under the interior when
    ``floor`` > 0 (a ground: no kernel writes it); interior cells keep p⁻, which they read."""
    keep = out[L:-L, L:-L, L:-L].copy()
    below = out[L:-L, L:-L, :floor].copy()
    out[...] = np.nan
    out[L:-L, L:-L, L:-L] = keep
    out[L:-L, L:-L, :floor] = below


def assert_close(fast, ref, what: str) -> None:
    """Every element within the dtype's tolerance of max|ref|; same dtype; no NaN."""
    fast = np.asarray(fast)
    ref = np.asarray(ref)
    assert fast.dtype == ref.dtype, f"{what}: dtype {fast.dtype} != {ref.dtype}"
    assert fast.shape == ref.shape
    assert np.all(np.isfinite(fast)), f"{what}: {int(np.sum(~np.isfinite(fast)))} elements not written / not finite"
    scale = float(np.max(np.abs(ref))) or 1.0
    err = np.abs(fast.astype(np.float64) - ref.astype(np.float64))
    tol = TOL[ref.dtype] * scale
    worst = int(np.argmax(err))
    assert err.flat[worst] <= tol, (f"{what}: element {np.unravel_index(worst, ref.shape)} differs by "
                                    f"{err.flat[worst]:.3g} > {tol:.3g}")


def compare_travelling(tmp_path, precision: str, backend, ground: bool = False) -> None:
    """A travelling box (tests/test_travelling.py's long path, 160 steps: shifts along x, y and z)
    on ``backend`` against NumPy: probe samples and final fields to 1e-10 (float64) or 1e-5
    (float32) of their largest value. The shifts move the layer's buffers
    through its slab views, whatever their storage order, or device copies. With ``ground`` the
    sphere starts resting on a ground and rises slowly (6 m/s) as it flies: the box stands on the
    floor and shifts along x and y only, the floor's mirror rows and the sphere's mirror image
    in play."""
    from conftest import LONG_PATH_SCENE

    from wavesolve import load_scene
    from wavesolve.travelling import travellers

    text = LONG_PATH_SCENE.replace("[simulation]\n", f'[simulation]\nprecision = "{precision}"\n', 1)
    if ground:
        text = text.replace("[domain]\nsize = 0.3\n", "[domain]\ncenter = [0.0, 0.0, 0.15]\nsize = 0.3\n[ground]\n"
                            "height = 0.0\n").replace('name = "ball"\n', 'name = "ball"\nposition = [0.0, 0.0, 0.04]\n')
    path = tmp_path / f"traveller_{precision}_{ground}.toml"
    path.write_text(text)
    scene = load_scene(path)
    trav = travellers(scene)[0]
    sims = [trav.simulation(scene, b) for b in ("numpy", backend)]
    assert sims[0].grid.ground == ground and any(body.image for body in sims[0].ghosts.bodies) == ground
    a, b = sims[0].run(160, progress=False), sims[1].run(160, progress=False)
    moved = sims[0].shifts != 0
    assert list(moved) == [True, True, not ground] and list(sims[1].shifts) == list(sims[0].shifts)
    tol = 1e-10 if precision == "float64" else 1e-5
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * np.max(np.abs(a)))
    # over a ground, the field from the floor up: the cells under it are the floor's mirror rows,
    # copied from above before each use, and the side layers' cells under the floor, which its
    # rigid face cuts off from the field above (absorbing.py). Their split pressures grow to ~10
    # times p there, cancelling (the split field's static drift: a fixed box's layer keeps ~10 Pa
    # in them while p decays to 1e-4), and each shift's re-split of them multiplies the builds'
    # rounding differences (1e-11 → 0.17 Pa over five shifts here, thirty-third session; 0.06 Pa
    # since the layer steps p⁺ = p − Σ decreases, thirty-fourth), while
    # the field from the floor up stays bit-equal: nothing above the floor reads them
    above = slice(sims[0].grid.layer if ground else 0, None)
    p = sims[1].engine.to_host(sims[1].p)[:, :, above]
    ref = np.asarray(sims[0].p)[:, :, above]
    np.testing.assert_allclose(p, ref, rtol=0, atol=tol * np.max(np.abs(ref)))


def plate_scene(precision: str, motion: str = "") -> str:
    """Scene text: a plate one cell thick (5 mm at h = 5 mm) shaken along its normal, off the
    grid's planes, with listeners above and below it; ``motion`` an optional motion line (a spin)."""
    return f"""
[simulation]
duration = 0.001
cell_size = 0.005
precision = "{precision}"
[domain]
size = 0.24
[[objects]]
name = "plate"
mesh = {{ primitive = "box", size = [0.12, 0.12, 0.005] }}
position = [0.0013, 0.0017, 0.0011]
{motion}
[[objects.shaders]]
type = "prescribed"
pattern = "translate"
direction = [0.0, 0.0, 1.0]
signal = {{ waveform = "gaussian_derivative", frequency = 2000.0, amplitude = 100.0 }}
[[listeners]]
name = "above"
position = [0.02, 0.01, 0.05]
[[listeners]]
name = "below"
position = [0.02, 0.01, -0.05]
"""


def plate_modes() -> str:
    """Path of a modes file for :func:`blocks_scene`'s plate (written once per process): one
    synthetic mode U = diag(1, 0.5, 0) x / 1 cm at 3 kHz, whose net volume (1.5 × the plate's
    volume / 1 cm) the plate's volume balance reads each step."""
    from wavesolve.meshes import Box, primitive_mesh
    from wavesolve.modes import ModeSet

    path = Path(tempfile.gettempdir()) / f"wavesolve_blocks_plate_modes_{os.getpid()}.h5"
    if not path.exists():
        vertices = np.asarray(primitive_mesh(Box(primitive="box", size=[0.06, 0.12, 0.005])).vertices)
        ModeSet([3000.0], [0.05], (vertices @ np.diag([1.0, 0.5, 0.0]) / 0.01)[:, :, None]).save(path)
    return str(path)


def blocks_scene(precision: str) -> str:
    """Scene text: a pulsating ball beside a struck plate one cell thick, above a ground: ghost cells,
    back values, solid cells, the floor's mirror rows, the volume balance (the plate's click and
    one mode: flux_balance, its Q̇ read from the boundary input) and two listeners (the block
    runners' tests)."""
    return f"""
[simulation]
duration = 0.001
cell_size = 0.005
precision = "{precision}"
[domain]
size = [0.24, 0.24, 0.16]
center = [0.0, 0.0, 0.08]
[ground]
height = 0.0
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.03, subdivisions = 3 }}
position = [-0.04, 0.0, 0.05]
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 2000.0, amplitude = 100.0 }}
[[objects]]
name = "plate"
mesh = {{ primitive = "box", size = [0.06, 0.12, 0.005] }}
position = [0.05, 0.0013, 0.0411]
[[objects.shaders]]
type = "acceleration_noise"
material = "steel"
impacts = [ {{ time = 0.0002, position = [0.01, 0.02, 0.0025], impulse = [0.0, 0.0, -0.0005], speed = 1.0 }} ]
[[objects.shaders]]
type = "modal"
material = "steel"
modes = "{plate_modes()}"
impacts = [ {{ time = 0.0002, position = [0.01, 0.02, 0.0025], impulse = [0.0, 0.0, -0.0005], speed = 1.0 }} ]
[[listeners]]
name = "above"
position = [0.02, 0.01, 0.1]
[[listeners]]
name = "low"
position = [0.06, -0.03, 0.012]
"""


def balance_terms(bal, p: np.ndarray) -> float:
    """Σ |v − p_f| over the faces of volume balance ``bal`` (wavesolve.flux_balance) in field p:
    the size of the terms its net flux sums, the scale of a flux check's rounding."""
    flat = p.reshape(-1)
    return float(np.sum(np.abs(flat[np.maximum(bal.face_src, 0)] - flat[bal.face_fluid])))
