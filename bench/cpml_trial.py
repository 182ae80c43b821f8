"""A trial, not part of the package: an unsplit convolutional PML (CPML) in place of the split layer.

    python3 bench/cpml_trial.py --alpha 3000 [--cases sphere,can_at_rest] [--reflection]

The NumPy backend only, on whole-grid arrays (only layer cells and the faces they touch matter):

    v_a  <- v_a - dt/rho (D_a p + psi_p_a)          psi_p_a <- b_a psi_p_a + c_a D_a p   (faces)
    p+   <- p - rho c^2 dt sum_a (D_a v + psi_v_a)   psi_v_a <- b_a psi_v_a + c_a D_a v   (cells)
    b = exp(-(sigma + alpha) dt), c = sigma/(sigma + alpha) (b - 1)

with the split layer's sigma profile; alpha is the complex frequency shift. A travelling box moves
its memory variables with the field at a shift and drops them where the new axis does not absorb;
the entering plane's velocities are rebuilt as FollowingSimulation does. It prints what
bench/moving_box_energy.py prints for its cases (energy after a click, as a fraction of its peak)
and, with --reflection, tests/test_absorbing_layer.py's reflection measurement. Its figures are in
bench/RESULTS.md (twenty-third session): the shift trades a moving box's regrowth against
low-frequency energy left in a box at rest.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

import moving_box_energy  # noqa: E402

import wavesolve.following  # noqa: E402
from wavesolve.absorbing import pml_profile  # noqa: E402
from wavesolve.following import FollowingSimulation, _shift  # noqa: E402
from wavesolve.kernels.reference import leapfrog_interior  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402


class CPMLUpdate:
    """``update(p, out)``: p⁺ into ``out`` by the CPML on layer cells, the leapfrog inside (the
    field update's interface, in place of kernels/reference.py's)."""

    def __init__(self, grid, density, dtype, alpha=0.0):
        self.grid = grid
        self.L = L = grid.layer
        self.shape = shape = grid.shape
        self.rho, c, self.dt, self.h = density, grid.sound_speed, grid.dt, grid.h
        self.K = density * c * c * grid.dt
        self.lam2 = np.dtype(dtype).type(grid.courant ** 2)
        self.v = [np.zeros(tuple(n + (a == b) for b, n in enumerate(shape))) for a in range(3)]
        self.psi_p = [np.zeros_like(v) for v in self.v]
        self.psi_v = [np.zeros(shape) for _ in range(3)]
        self.bf, self.cf, self.bc, self.cc = [], [], [], []
        for a in range(3):
            sf = pml_profile(shape[a], L, grid.h, c, at_faces=True)
            sc = pml_profile(shape[a], L, grid.h, c, at_faces=False)
            for s, B, C in ((sf, self.bf, self.cf), (sc, self.bc, self.cc)):
                b = np.exp(-(s + alpha) * grid.dt)
                cc = np.where(s > 0, s / np.maximum(s + alpha, 1e-300) * (b - 1.0), 0.0)
                sh = [1, 1, 1]
                sh[a] = -1
                B.append(b.reshape(sh))
                C.append(cc.reshape(sh))
        # layer cells, and faces that touch a layer cell
        idx = [np.arange(n) for n in shape]
        inl = [(i < L) | (i >= n - L) for i, n in zip(idx, shape)]
        self.cell_mask = inl[0][:, None, None] | inl[1][None, :, None] | inl[2][None, None, :]

    def __call__(self, p, out):
        h, dt, rho = self.h, self.dt, self.rho
        pd = p.astype(np.float64)
        div = np.zeros(self.shape)
        for a in range(3):
            n = self.shape[a]
            Dp = np.zeros(self.v[a].shape)
            sl_hi = [slice(None)] * 3
            sl_lo = [slice(None)] * 3
            sl_f = [slice(None)] * 3
            sl_hi[a], sl_lo[a], sl_f[a] = slice(1, n), slice(0, n - 1), slice(1, n)
            Dp[tuple(sl_f)] = (pd[tuple(sl_hi)] - pd[tuple(sl_lo)]) / h
            self.psi_p[a] = self.bf[a] * self.psi_p[a] + self.cf[a] * Dp
            self.v[a] -= dt / rho * (Dp + self.psi_p[a])
            e0 = [slice(None)] * 3
            e1 = [slice(None)] * 3
            e0[a], e1[a] = 0, n
            self.v[a][tuple(e0)] = 0.0
            self.v[a][tuple(e1)] = 0.0
            up = [slice(None)] * 3
            dn = [slice(None)] * 3
            up[a], dn[a] = slice(1, n + 1), slice(0, n)
            Dv = (self.v[a][tuple(up)] - self.v[a][tuple(dn)]) / h
            self.psi_v[a] = self.bc[a] * self.psi_v[a] + self.cc[a] * Dv
            div += Dv + self.psi_v[a]
        new = pd - self.K * div
        out[self.cell_mask] = new[self.cell_mask].astype(out.dtype)
        leapfrog_interior(p, out, self.L, self.lam2)


class CPMLFollowing(FollowingSimulation):
    """A travelling box whose layer is the CPML (``alpha``: its frequency shift, 1/s)."""

    alpha = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._update = CPMLUpdate(self.grid, self.scene.density, self.dtype, self.alpha)

    def shift(self, axis, direction):
        """FollowingSimulation.shift with the CPML's state: no split pressures, memory variables moved."""
        u = self._update
        for a in range(3):
            self.velocity[a][...] = u.v[a]
        self._rebuild_velocity()
        arrays = [self.p, self.p_prev, *self.velocity, *u.psi_p, *u.psi_v]
        for arr in arrays:
            _shift(arr, axis, direction)
        self._enter_layer(axis, direction, [np.zeros(self.grid.shape) for _ in range(3)])
        for a in range(3):
            u.v[a][...] = self.velocity[a]
            u.psi_p[a] *= (u.cf[a] != 0)       # memory only where the axis absorbs
            u.psi_v[a] *= (u.cc[a] != 0)
        self._move_box(axis, direction)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alpha", type=float, default=3000.0, help="frequency shift (1/s)")
    ap.add_argument("--cases", default="sphere,can_at_rest", help="moving_box_energy cases")
    ap.add_argument("--reflection", action="store_true", help="also the fixed box's reflection")
    args = ap.parse_args()
    CPMLFollowing.alpha = args.alpha
    wavesolve.following.FollowingSimulation = CPMLFollowing      # Traveller.simulation imports it late
    for case in args.cases.split(","):
        trace, _, _ = moving_box_energy.energy_trace(case, "numpy")
        print(f"alpha {args.alpha:g} {case:<14} 2.9/4.4 ms {trace[1]:.1e} / {trace[2]:.1e}; 7-25 ms "
              f"{trace[4:17].min():.1e} - {trace[4:17].max():.1e}; 26-38 ms max {trace[17:].max():.1e}")
    if args.reflection:
        import test_absorbing_layer as layer_test

        init = Simulation.__init__

        def with_cpml(self, *a, **k):
            init(self, *a, **k)
            self._update = CPMLUpdate(self.grid, self.scene.density, self.dtype, args.alpha)

        Simulation.__init__ = with_cpml
        for name, listener in (("normal", layer_test.ON_AXIS), ("oblique", layer_test.OBLIQUE)):
            ref, dt = layer_test._listener_signal(0.52, listener=listener)
            small, _ = layer_test._listener_signal(0.3, listener=listener)
            print(f"alpha {args.alpha:g} reflection {name} {layer_test._reflection(small, ref, dt, listener):.2e}")


if __name__ == "__main__":
    main()
