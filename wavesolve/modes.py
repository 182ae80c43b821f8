"""Modes files (HDF5): the vibration modes of an object, on its surface mesh's vertices.

| dataset | shape | content |
| --- | --- | --- |
| ``frequencies`` | (M,) | undamped natural frequencies fᵢ (Hz), increasing, rigid modes removed |
| ``damping`` | (M,) | modal damping ratios ξᵢ (Rayleigh: ½(α/ωᵢ + βωᵢ), C = αM + βK) |
| ``shapes`` | (V, 3, M) | displacement of each surface vertex in mode i, object frame, mass-normalised (UᵀMU = I, units 1/√kg) |

File attributes: ``material`` (JSON of the material), ``vertices_hash`` (SHA-256 of the surface
mesh's vertex and face arrays, float64/int64), ``settings`` (JSON), ``wavesolve_version``; written by
``wavesolve modal``. Shapes index the vertices of the mesh given to ``wavesolve modal`` (after its
``--scale``), in the same order: a scene must use that mesh with the same scale.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_path


@dataclass
class ModeSet:
    """Modes on surface vertices: frequencies (M,) Hz, damping (M,) ξ, shapes (V, 3, M)."""

    frequencies: np.ndarray
    damping: np.ndarray
    shapes: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frequencies = np.asarray(self.frequencies, dtype=np.float64).reshape(-1)
        self.damping = np.asarray(self.damping, dtype=np.float64).reshape(-1)
        self.shapes = np.asarray(self.shapes, dtype=np.float64)
        m = len(self.frequencies)
        if self.damping.shape != (m,) or self.shapes.ndim != 3 or self.shapes.shape[1:] != (3, m):
            raise ValueError(f"inconsistent modes: frequencies {self.frequencies.shape}, damping "
                             f"{self.damping.shape}, shapes {self.shapes.shape} (expected (V, 3, {m}))")
        for name in ("frequencies", "damping", "shapes"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} contains NaN or Inf")
        if np.any(self.frequencies <= 0):
            raise ValueError("frequencies must be positive (remove rigid modes)")
        if np.any(self.damping < 0) or np.any(self.damping >= 1):
            raise ValueError("damping ratios must lie in [0, 1)")

    def __len__(self) -> int:
        return len(self.frequencies)

    def save(self, path: str | Path) -> None:
        import h5py

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f["frequencies"] = self.frequencies
            f["damping"] = self.damping
            f.create_dataset("shapes", data=self.shapes, compression="gzip")
            f["frequencies"].attrs["units"] = "Hz"
            f["shapes"].attrs["units"] = "m per sqrt(kg) modal coordinate (mass-normalised)"
            for k, v in self.attrs.items():
                f.attrs[k] = v

    @classmethod
    def load(cls, path: str | Path) -> "ModeSet":
        """Read a modes file; ValueError (with the reason) if it is not one."""
        import h5py

        try:
            with h5py.File(path, "r") as f:
                missing = [n for n in ("frequencies", "damping", "shapes") if n not in f]
                if missing:
                    raise ValueError(f"modes files need datasets frequencies, damping, shapes; missing {missing}")
                return cls(f["frequencies"][()], f["damping"][()], f["shapes"][()], dict(f.attrs))
        except OSError as exc:
            raise ValueError(f"cannot read HDF5: {exc}") from None


def mesh_hash(vertices: np.ndarray, faces: np.ndarray) -> str:
    """SHA-256 of a mesh's vertex (float64) and face (int64) arrays."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    return h.hexdigest()


def settings_json(**settings) -> str:
    return json.dumps(settings, sort_keys=True)
