"""Figures of results: waveform and spectrogram per listener, pressure slices (PNG)."""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal as sps  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .constants import CELLS_PER_WAVELENGTH, SOUND_SPEED  # noqa: E402
from .files import atomic_path  # noqa: E402
from .result import Result  # noqa: E402


def accurate_bandwidth(result: Result) -> float | None:
    """c / (10 h) (Hz): the highest frequency the run resolves accurately; None if the result
    does not record its cell size."""
    h = result.metadata.get("cell_size")
    if not h:
        return None
    try:
        c = float(tomllib.loads(result.scene_text).get("medium", {}).get("sound_speed", SOUND_SPEED))
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        c = SOUND_SPEED
    return c / (CELLS_PER_WAVELENGTH * float(h))


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
    # windows of about len/32 (64 … 1024 samples), hop 1/8 window; extended at both ends (mirrored,
    # no step at the cut) so that the first window is centred at t = 0 and the axis is the waveform's
    nper = int(min(1024, max(64, 2 ** np.round(np.log2(max(len(p) // 32, 64))))))
    nper = max(min(nper, len(p)), 1)                 # a very short signal: one window, its length
    f, tt, z = sps.stft(p, fs=fs, nperseg=nper, noverlap=nper * 7 // 8, boundary="even", padded=False)
    s = np.abs(z) ** 2                           # power spectrum per window (Pa²), one-sided:
    s[1:-1 if nper % 2 == 0 else None] *= 2.0    # the negative frequencies' share
    level = 10 * np.log10(np.maximum(s, 1e-30) / (20e-6) ** 2)
    top = float(level.max()) if level.size else 0.0
    mesh = ax_s.pcolormesh(tt * 1e3, f / 1e3, level, shading="auto", vmin=top - 80, vmax=top, cmap="magma")
    # the colour bar takes its room beside both panels (so their time axes line up), drawn beside the lower
    fig.colorbar(mesh, ax=[ax_w, ax_s], label="dB re 20 µPa", shrink=0.45, anchor=(0.0, 0.0))
    limit = accurate_bandwidth(result)
    if limit is not None and limit < fs / 2:   # above c/(10h) the grid's dispersion colours the sound
        ax_s.axhspan(limit / 1e3, fs / 2e3, color="white", alpha=0.35, lw=0)
        ax_s.axhline(limit / 1e3, color="white", ls="--", lw=0.8)
        ax_s.text(0.01, limit / 1e3, " above: beyond c/(10h), dispersive", color="white", fontsize=8,
                  va="bottom", transform=ax_s.get_yaxis_transform())
    ax_s.set_xlabel("time (ms)")
    ax_s.set_ylabel("frequency (kHz)")
    for ax in (ax_w, ax_s):                  # one time axis for both panels
        ax.set_xlim(0.0, t[-1] * 1e3 if len(t) > 1 else 1.0)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_slice(result: Result, name: str, path: str | Path) -> Path:
    """Save a PNG of pressure slice ``name``: one panel per time, one colour scale (Pa, symmetric
    about 0) for all, cells inside objects grey."""
    sl = result.pressure_slice(name)
    n = len(sl.times)
    cols = min(4, n)
    rows = -(-n // cols)
    fluid = np.where(sl.solid, 0.0, sl.pressure)
    top = float(np.max(np.abs(fluid))) or 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.55")
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1.0, 3.0 * rows + 0.6), squeeze=False,
                             constrained_layout=True)
    a, b = sl.plane_axes
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        image = ax.imshow(np.ma.masked_array(sl.pressure[i], sl.solid[i]).T, origin="lower", extent=sl.extent(i),
                          cmap=cmap, vmin=-top, vmax=top, interpolation="nearest")
        where = f", {sl.axis} = {sl.position_at(i):.4g} m" if sl.follows else ""
        ax.set_title(f"t = {sl.times[i] * 1e3:.4g} ms{where}", fontsize=10)
        ax.set_xlabel(f"{a} (m)")
        ax.set_ylabel(f"{b} (m)")
        ax.set_aspect("equal")
    fig.colorbar(image, ax=axes, label="pressure (Pa)", shrink=0.9)
    plane = (f"moving with the box of '{sl.follows}'" if sl.follows else f"{sl.axis} = {sl.position:.4g} m")
    fig.suptitle(f"slice '{name}': {plane} (grey: inside an object)")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_result(result: Result, out_dir: str | Path, stem: str) -> list[Path]:
    """One PNG per listener, ``<stem>_<listener>.png``, and one per pressure slice,
    ``<stem>_slice_<name>.png``, in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return ([plot_listener(result, name, out_dir / f"{stem}_{name}.png") for name in result.names]
            + [plot_slice(result, name, out_dir / f"{stem}_slice_{name}.png") for name in result.slices])
