"""Modal baseline: a struck steel bar rendered by classic modal synthesis and by wavesolve's FDTD.

The bar of scenes/showcase (0.2 × 0.02 × 0.01 m, modes by ``wavesolve.fem`` at 5 mm, up to 7 kHz)
is struck at one end (1 m/s, Hertz contact on steel) in free field. The same modal
accelerations q̈ᵢ(t) (the ``modal`` shader's oscillators) drive

  * FDTD: wavesolve, h = 5 mm, NumPy backend, pressure at a listener and at 16 fit probes on a
    circle of 0.15 m around the bar (xz plane, and ±4 cm off it);
  * classic modal synthesis, as real-time engines do: each mode radiates through a per-mode
    transfer, either (a) "compact": the free-space monopole m = ∫(U·n)dS and dipole d = ∫y(U·n)dS
    of its surface acceleration (no fit, no scattering), or (b) "fit": a monopole + dipole whose
    four complex amplitudes are least-squares fitted, at the mode's frequency, to the FDTD field
    at the probes (a precomputed-acoustic-transfer style fit of the lowest orders).

Printed and saved (bench/figures/modal_baseline.png, and the table for bench/RESULTS.md): per-mode levels
at the listener (FDTD vs the two baselines, dB), waveforms, spectra, and wall times.

    python3 bench/modal_baseline.py [--duration 0.03]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

import wavesolve

REPO = Path(__file__).resolve().parents[1]
SHOWCASE = REPO / "scenes" / "showcase"
LISTENER = np.array([0.05, 0.03, 0.14])
PROBE_RADIUS = 0.15

SCENE = """
[simulation]
duration = {duration}
sample_rate = 96000.0
cell_size = 0.005
precision = "float64"

[domain]
size = [0.37, 0.12, 0.37]

[[objects]]
name = "bar"
mesh = "{mesh}"

[[objects.shaders]]
type = "modal"
material = "steel"
resolution = 0.005
max_frequency = 7000.0
impacts = [ {{ time = 0.0005, position = [0.1, 0.0, -0.005], impulse = [0.0, 0.0, 0.005], speed = 1.0 }} ]

{listeners}
"""


def probes() -> np.ndarray:
    ring = [(PROBE_RADIUS * math.cos(a), 0.0, PROBE_RADIUS * math.sin(a)) for a in np.arange(12) * math.pi / 6 + 0.2]
    off = [(0.12 * math.cos(a), y, 0.08 * math.sin(a)) for a, y in ((0.3, 0.04), (2.0, -0.04), (3.6, 0.04), (5.0, -0.04))]
    return np.array(ring + off)


def surface_moments(mesh, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per mode: monopole ∫(U·n)dS (M,) and dipole ∫y(U·n)dS (M, 3), centroid rule on the mesh."""
    tri = np.asarray(mesh.faces)
    un = np.einsum("fd,fdm->fm", mesh.face_normals, shapes[tri].mean(axis=1))
    area = mesh.area_faces[:, None]
    return (un * area).sum(axis=0), np.einsum("fd,fm->md", mesh.triangles_center, un * area)


def compact_transfer(m, d, x, k, rho):
    """Frequency-domain transfer (rfft convention e^{−iωt}) of a monopole m and dipole d at the origin."""
    r = np.linalg.norm(x)
    rhat = x / r
    return rho / (4 * math.pi) * np.exp(-1j * k * r) * (m / r + (d @ rhat) * (1j * k / r + 1 / r ** 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=0.03)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "figures" / "modal_baseline.png")
    args = ap.parse_args()

    pts = probes()
    listeners = "\n".join(f'[[listeners]]\nname = "{n}"\nposition = [{p[0]:.5f}, {p[1]:.5f}, {p[2]:.5f}]\n'
                          for n, p in [("listener", LISTENER)] + [(f"probe{i}", p) for i, p in enumerate(pts)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bar.toml"
        path.write_text(SCENE.format(duration=args.duration, mesh=SHOWCASE / "bar.obj", listeners=listeners))
        t0 = time.perf_counter()
        scene = wavesolve.load_scene(path)
        t_modes = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = wavesolve.simulate(scene, backend="numpy", progress=False)
        t_fdtd = time.perf_counter() - t0
    shader = scene.objects[0].shaders[0]
    fs = result.sample_rate
    n = len(result.listener("listener"))
    t = np.arange(n) / fs
    rho, c = scene.config.medium.density, scene.config.medium.sound_speed

    # classic modal synthesis: q̈ from the same oscillators, compact monopole + dipole per mode
    t0 = time.perf_counter()
    qdd = np.array([shader.modal_acceleration(tk) for tk in t])            # (n, M)
    m, d = surface_moments(shader.mesh, shader.shapes)
    f = np.fft.rfftfreq(n, 1 / fs)
    Q = np.fft.rfft(qdd, axis=0)                                           # (F, M)
    k = 2 * math.pi * f / c
    H = np.array([compact_transfer(m, d, LISTENER, kk, rho) for kk in k])  # (F, M)
    p_compact = np.fft.irfft((H * Q).sum(axis=1), n)
    t_classic = time.perf_counter() - t0

    # per-mode levels at the listener, from windowed spectra at each mode frequency
    win = np.hanning(n)

    def at(x, freq):  # complex amplitude of x at freq (Hann-windowed DFT)
        return np.sum(win * x * np.exp(-2j * math.pi * freq * t))

    p_fdtd = result.listener("listener")
    probe_p = np.array([result.listener(f"probe{i}") for i in range(len(pts))])
    rows = []
    for i, fi in enumerate(shader.frequencies):
        qi = at(qdd[:, i], fi)
        ki = 2 * math.pi * fi / c
        fdtd = abs(at(p_fdtd, fi))
        compact = abs(compact_transfer(m[i], d[i], LISTENER, ki, rho) * qi)
        # fit: probes' transfer P/Q̈ᵢ ≈ basis · [m, dx, dy, dz]
        h = np.array([at(p, fi) for p in probe_p]) / qi
        basis = np.array([[compact_transfer(1.0, np.zeros(3), x, ki, rho)]
                          + [compact_transfer(0.0, e, x, ki, rho) for e in np.eye(3)] for x in pts])
        coef, *_ = np.linalg.lstsq(basis, h, rcond=None)
        fit_res = np.linalg.norm(basis @ coef - h) / np.linalg.norm(h)
        fitted = abs(compact_transfer(coef[0], coef[1:], LISTENER, ki, rho) * qi)
        rows.append((fi, 20 * math.log10(fdtd / 2e-5 * 2 / win.sum() + 1e-300),
                     20 * math.log10(compact / fdtd), 20 * math.log10(fitted / fdtd), fit_res))

    print(f"modes: {len(shader.frequencies)} up to {shader.frequencies.max():.0f} Hz (FEM + load {t_modes:.1f} s)")
    print(f"wall time: FDTD {t_fdtd:.1f} s ({scene.grid.shape} cells incl. layer); classic synthesis {t_classic:.2f} s")
    print("| mode (Hz) | FDTD level at listener (dB SPL) | compact monopole+dipole − FDTD (dB) | fitted − FDTD (dB) | fit residual |")
    print("| --- | --- | --- | --- | --- |")
    for fi, lvl, dc, df, res in rows:
        print(f"| {fi:.0f} | {lvl:.1f} | {dc:+.1f} | {df:+.1f} | {res:.2f} |")
    print(f"broadband: rel. L2 of compact synthesis vs FDTD {np.linalg.norm(p_compact - p_fdtd) / np.linalg.norm(p_fdtd):.2f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 1, figsize=(9, 10))
    ax[0].plot(t * 1e3, p_fdtd, label="FDTD (wavesolve)")
    ax[0].plot(t * 1e3, p_compact, label="classic: compact monopole + dipole", alpha=0.8)
    ax[0].set(xlabel="time (ms)", ylabel="pressure (Pa)", title="struck steel bar, listener at "
              f"{LISTENER.tolist()} m")
    ax[0].legend()
    spec = lambda x: 20 * np.log10(np.abs(np.fft.rfft(x * win)) + 1e-12)  # noqa: E731
    ax[1].plot(f, spec(p_fdtd), label="FDTD")
    ax[1].plot(f, spec(p_compact), label="compact", alpha=0.8)
    for fi in shader.frequencies:
        ax[1].axvline(fi, color="k", lw=0.4, ls=":")
    ax[1].set(xlim=(0, 8000), xlabel="frequency (Hz)", ylabel="dB (arbitrary ref.)")
    ax[1].legend()
    idx = np.arange(len(rows))
    ax[2].bar(idx - 0.2, [r[2] for r in rows], 0.4, label="compact − FDTD")
    ax[2].bar(idx + 0.2, [r[3] for r in rows], 0.4, label="fitted − FDTD")
    ax[2].set_xticks(idx, [f"{r[0]:.0f}" for r in rows], rotation=45)
    ax[2].set(xlabel="mode (Hz)", ylabel="level difference (dB)")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
