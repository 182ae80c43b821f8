"""Simulation results and the HDF5 result file: the one place that knows its layout.

Layout::

    /listeners/<name>    float64 (samples,) pressure in Pa at the output rate, from scene time 0
                          attrs: sample_rate (Hz), position (3,) m
    file attrs:           wavesolve_version, scene (TOML text), scene_path, sample_rate,
                          cell_size, time_step, grid_shape, backend, precision,
                          wav_gain (full scale per Pa, present once a normalised WAV was written)
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np


@dataclass
class Result:
    """Listener signals of a run.

    Attributes:
        sample_rate: output rate (Hz).
        signals: name → pressure (samples,) in Pa, sample 0 at scene time 0.
        positions: name → (3,) listener position (m).
        scene_text: the scene file's text; metadata: run facts (grid, backend, version …).
    """

    sample_rate: float
    signals: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    scene_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.signals)

    def listener(self, name: str) -> np.ndarray:
        """Pressure at listener ``name`` (Pa), shape (samples,)."""
        try:
            return self.signals[name]
        except KeyError:
            raise KeyError(f"no listener '{name}'; listeners: {', '.join(self.signals)}") from None

    def stacked(self) -> np.ndarray:
        """All listeners as (samples, n_listeners), in scene order (Pa)."""
        return np.stack([self.signals[n] for n in self.names], axis=1)

    def save(self, path: str | Path) -> Path:
        """Write the result file atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["scene"] = self.scene_text
                for key, value in self.metadata.items():
                    f.attrs[key] = value
                f.attrs["sample_rate"] = self.sample_rate
                group = f.create_group("listeners")
                for name, sig in self.signals.items():
                    ds = group.create_dataset(name, data=np.asarray(sig, dtype=np.float64))
                    ds.attrs["sample_rate"] = self.sample_rate
                    ds.attrs["position"] = np.asarray(self.positions[name], dtype=np.float64)
                    ds.attrs["units"] = "Pa"
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Result":
        """Read a result file written by :meth:`save`."""
        with h5py.File(path, "r") as f:
            signals = {name: ds[()] for name, ds in f["listeners"].items()}
            positions = {name: ds.attrs["position"] for name, ds in f["listeners"].items()}
            metadata = {k: v for k, v in f.attrs.items() if k not in ("scene", "sample_rate")}
            return cls(sample_rate=float(f.attrs["sample_rate"]), signals=signals, positions=positions,
                       scene_text=str(f.attrs.get("scene", "")), metadata=metadata)
