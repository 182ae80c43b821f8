"""Steps run in compiled blocks on the CPU (numba backend), with no Python between them.

Driving each step from Python costs the numba backend a fixed 0.1–0.2 ms a step besides the
kernels' own work: Numba unboxes every array argument of each compiled call (the field update takes
sixteen), and the ghost cells, listeners and closing pass each go through a few Python frames. On a
sound-synthesis grid (88³: 0.5–1 ms a step) that is a tenth of the run or more.

Where the geometry does not move and there are no point sources, a step's only host work is the
shaders' boundary accelerations, which do not depend on the field (the GPU's block runner,
``kernels/cuda_blocks.py``, rests on the same fact), and ``Simulation`` asks for them
``MOTION_BLOCK`` steps at a time anyway (``Simulation.accelerations_ahead``). So
:class:`CompiledBlocks` runs every step of a run as compiled calls of :func:`run_block`, each up
to the next multiple of ``INSTABILITY_CHECK_INTERVAL`` steps or the end of the kept accelerations.
A call does, per step, exactly ``Simulation._advance``'s work with the same compiled kernels in the
same order (floor mirror, ghost cells, listener samples, field update, thin-part correction and
solid cells) on the same accelerations, and the field's peak |p| is checked at the same steps as
``Simulation._step`` checks it: a run is bit-equal to the same run step by step, and stops at the
same step when it becomes unstable (``tests/test_cpu_blocks.py``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .. import geometry_kernels
from ..constants import INSTABILITY_CHECK_INTERVAL
from ..geometry_kernels import flux_balance, operator_apply
from . import cpu, subnormals
from .cpu import close_cells, fused_step, mirror_floor
from .numba_cache import key_on_sources


@njit(cache=True)
def probe_samples(p, cells, weights, out):
    """out[l] = Σ_c weights[l, c] p[cells[l, c]] (float64) over the 8 corners of listener l's
    trilinear stencil, summed in pairs ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)) as
    ``Probes.sample`` and the GPU's ``ws_probe`` do. ``p`` is flat; ``cells``, ``weights`` (n, 8)."""
    for n in range(cells.shape[0]):
        w0 = weights[n, 0] * np.float64(p[cells[n, 0]])
        w1 = weights[n, 1] * np.float64(p[cells[n, 1]])
        w2 = weights[n, 2] * np.float64(p[cells[n, 2]])
        w3 = weights[n, 3] * np.float64(p[cells[n, 3]])
        w4 = weights[n, 4] * np.float64(p[cells[n, 4]])
        w5 = weights[n, 5] * np.float64(p[cells[n, 5]])
        w6 = weights[n, 6] * np.float64(p[cells[n, 6]])
        w7 = weights[n, 7] * np.float64(p[cells[n, 7]])
        out[n] = ((w0 + w1) + (w2 + w3)) + ((w4 + w5) + (w6 + w7))


@njit(cache=True)
def run_block(p3, out3, accel, samples, op, density, scale, ghost_cells, balance, links, probe_cells, probe_weights,
              step_args, close_lam2, solid, layer, mirror_rows):
    """K = accel.shape[0] steps from p3 = pⁿ (out3 = pⁿ⁻¹); after an even K the fields are back in
    the arrays they started in (after an odd K, out3 holds pⁿ⁺ᴷ and p3 pⁿ⁺ᴷ⁻¹). Per step k:
    the floor's ``mirror_rows`` mirror rows under a ``layer``-cell layer (where > 0), the static ghost
    operator x = M p + ρ N aₖ (``op``: M's and N's CSR arrays; ``accel`` (K, ≥ g) boundary inputs,
    ``density`` ρ) written into the ghost cells ``ghost_cells``, the objects' volume balance on the
    ghost and back values (``balance``: ``flux_balance.Balance.arrays``; ``scale`` = ρ/h), listener
    samples into ``samples[k]`` (Pa),
    the field update (``fused_step`` with ``step_args``: ``FusedUpdate.arguments``), the thin-part correction
    from the back values x[len(ghost_cells):] (``links`` = fluid, back_row, cell) and ``solid`` cells
    set to zero."""
    m_ptr, m_cell, m_val, n_ptr, n_idx, n_val = op
    face_ptr, face_src, face_fluid, count_inv, add_ptr, add_dst, vol_ptr, vol_idx = balance
    fluid, back_row, cell = links
    n_ghost = ghost_cells.size
    p, out = p3, out3
    for k in range(accel.shape[0]):
        if mirror_rows > 0:
            mirror_floor(p, layer, mirror_rows)
        flat = p.reshape(p.size)
        x = operator_apply(m_ptr, m_cell, m_val, n_ptr, n_idx, n_val, flat, accel[k], density, ghost_cells)
        back = x[n_ghost:]
        flux_balance(flat, back, accel[k], scale, face_ptr, face_src, face_fluid, count_inv, add_ptr, add_dst,
                     vol_ptr, vol_idx)
        probe_samples(flat, probe_cells, probe_weights, samples[k])
        fused_step(p, out, *step_args)
        close_cells(out.reshape(out.size), flat, fluid, back_row, cell, back, close_lam2, solid)
        p, out = out, p


# run_block compiles the kernels it calls into its own code: its cache must follow their files
key_on_sources(run_block, cpu, subnormals, geometry_kernels)


class CompiledBlocks:
    """Runs a Simulation's steps as compiled calls (module docstring). Made by
    ``NumbaBackend.block_runner`` for a run whose ghost cells have a static operator.

    Attributes:
        K: the steps a piece of a run must hold for all of it to run compiled (``chunks`` and the
            benches size their pieces by it): 1, since any number of steps runs compiled here.
    """

    K = 1

    def __init__(self, sim: Any, operator: tuple) -> None:
        ghosts = sim.ghosts
        self.g = len(ghosts)
        self.op = operator
        self.ghost_cells = ghosts.index
        self.balance = ghosts.balance().arrays()
        fluid, back_row, cell, _ = ghosts.thin_links()
        self.links = (fluid, back_row, cell)
        self.no_accel = np.zeros((INSTABILITY_CHECK_INTERVAL, 1))
        self.samples = np.zeros((INSTABILITY_CHECK_INTERVAL, len(sim.probes.weights)))

    def run(self, sim: Any, out: np.ndarray, bar: Any) -> int:
        """Advance ``sim`` by ``out.shape[1]`` steps, writing their listener samples (Pa) into
        ``out`` (listeners × steps); returns that number of steps."""
        C = INSTABILITY_CHECK_INTERVAL
        probes, grid = sim.probes, sim.grid
        step_args = sim._update.arguments(sim.p.shape[0])
        density, lam2 = float(sim.scene.density), float(sim._lam2)
        steps, done = out.shape[1], 0
        while done < steps:
            count = min(steps - done, C - sim.n % C)             # up to the next stability check
            if self.g:
                accel = sim.accelerations_ahead()
                count = min(count, len(accel))
                accel = accel[:count]
            else:
                accel = self.no_accel[:count]
            samples = self.samples[:count]
            run_block(sim.p, sim.p_prev, accel, samples, self.op, density, density / grid.h, self.ghost_cells,
                      self.balance, self.links,
                      probes.cells, probes.weights, step_args, lam2, sim._hold_zero, grid.layer, grid.mirror_rows)
            if count % 2:
                sim.p, sim.p_prev = sim.p_prev, sim.p
            out[:, done:done + count] = samples.T
            sim.n += count
            done += count
            if sim.n % C == 0:
                sim.check_stability()
            bar.update(count)
        return steps
