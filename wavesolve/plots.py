"""Figures of results: waveform and spectrogram per listener (PNG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal as sps  # noqa: E402

from .result import Result  # noqa: E402


def plot_listener(result: Result, name: str, path: str | Path) -> Path:
    """Save a PNG with the pressure waveform (Pa) and its spectrogram (dB re 20 µPa) of one listener."""
    p = result.listener(name)
    fs = result.sample_rate
    t = np.arange(len(p)) / fs
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(9, 6), constrained_layout=True)
    ax_w.plot(t * 1e3, p, lw=0.8)
    ax_w.set_xlabel("time (ms)")
    ax_w.set_ylabel("pressure (Pa)")
    ax_w.set_title(f"listener '{name}' at {np.round(result.positions[name], 4).tolist()} m")
    ax_w.grid(alpha=0.3)
    nper = int(min(1024, max(64, 2 ** np.floor(np.log2(max(len(p) // 8, 64))))))
    f, tt, s = sps.spectrogram(p, fs=fs, nperseg=nper, noverlap=nper * 3 // 4, scaling="spectrum")
    level = 10 * np.log10(np.maximum(s, 1e-30) / (20e-6) ** 2)
    top = float(level.max()) if level.size else 0.0
    mesh = ax_s.pcolormesh(tt * 1e3, f / 1e3, level, shading="auto", vmin=top - 80, vmax=top, cmap="magma")
    fig.colorbar(mesh, ax=ax_s, label="dB re 20 µPa")
    ax_s.set_xlabel("time (ms)")
    ax_s.set_ylabel("frequency (kHz)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_result(result: Result, out_dir: str | Path, stem: str) -> list[Path]:
    """One PNG per listener, ``<stem>_<listener>.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [plot_listener(result, name, out_dir / f"{stem}_{name}.png") for name in result.names]
