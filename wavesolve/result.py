"""Simulation results and the HDF5 result file: the one place that knows its layout.

Layout::

    /listeners/<name>    float64 (samples,) pressure in Pa at the output rate, from scene time 0
                          attrs: sample_rate (Hz), position (3,) m
    /slices/<name>/pressure  float64 (times, n_a, n_b) pressure in Pa on a plane of cells normal to
                          ``axis`` (a, b: the other two axes in order), the absorbing layer left out
    /slices/<name>/solid     bool (times, n_a, n_b): cells whose centre lies inside an object
                          group attrs: axis ('x', 'y' or 'z'), position (m), times (s), origin (2,) m
                          (centre of cell (0, 0) along a and b), cell_size (m), follows (the
                          travelling object a slice moves with, or ""; then position is (times,)
                          and origin (times, 2), one per snapshot)
    file attrs:           wavesolve_version, scene (TOML text), scene_path, sample_rate,
                          cell_size, time_step, grid_shape, backend, precision,
                          wav_gain (full scale per Pa, present once a normalised WAV was written)

and the chunk part file of a time-parallel run (``wavesolve run-chunk``, ``--workers``)::

    /probes              float64 (groups, probes, steps) pressure in Pa at the step rate,
                          from step ``start_step`` (see wavesolve.chunks)
    /slices/<name>       float64 (times, n_a, n_b) this chunk's pressure on the scene's slices (Pa)
    /boxes/<name>        float64 (m·K, steps) the probe signals (Pa) of travelling object <name>'s box
                          at the step rate; attrs start_step, shape (3,) cells, shifts (3,) cells
    file attrs:           kind = "wavesolve chunk part", scene (TOML text), scene_path, plan (JSON),
                          key (SHA-256 of scene text + plan), chunk, n_chunks, start_step, stop,
                          wall_time, wavesolve_version
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .files import atomic_path
from .slices import PressureSlice


@dataclass
class Result:
    """Listener signals of a run.

    Attributes:
        sample_rate: output rate (Hz).
        signals: name → pressure (samples,) in Pa, sample 0 at scene time 0.
        positions: name → (3,) listener position (m).
        scene_text: the scene file's text; metadata: run facts (grid, backend, version …).
        slices: name → the pressure slices the scene asked for (``[[slices]]``).
    """

    sample_rate: float
    signals: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    scene_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    slices: dict[str, PressureSlice] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.signals)

    def listener(self, name: str) -> np.ndarray:
        """Pressure at listener ``name`` (Pa), shape (samples,)."""
        try:
            return self.signals[name]
        except KeyError:
            raise KeyError(f"no listener '{name}'; listeners: {', '.join(self.signals)}") from None

    def pressure_slice(self, name: str) -> PressureSlice:
        """Pressure slice ``name``: its pressure (times, n_a, n_b) in Pa, times, plane and solid cells."""
        try:
            return self.slices[name]
        except KeyError:
            have = ", ".join(self.slices) or "none (add [[slices]] to the scene)"
            raise KeyError(f"no slice '{name}'; slices: {have}") from None

    def stacked(self) -> np.ndarray:
        """All listeners as (samples, n_listeners), in scene order (Pa)."""
        return np.stack([self.signals[n] for n in self.names], axis=1)

    def save(self, path: str | Path) -> Path:
        """Write the result file atomically (temporary file, then rename)."""

        def write(f: h5py.File) -> None:
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
            for name, sl in self.slices.items():
                g = f.create_group(f"slices/{name}")
                g.create_dataset("pressure", data=np.asarray(sl.pressure, dtype=np.float64)).attrs["units"] = "Pa"
                g.create_dataset("solid", data=np.asarray(sl.solid, dtype=bool))
                g.attrs.update(axis=sl.axis, position=sl.position, times=np.asarray(sl.times, dtype=np.float64),
                               origin=np.asarray(sl.origin, dtype=np.float64), cell_size=sl.cell_size,
                               follows=sl.follows)

        return _write_atomically(path, write)

    @classmethod
    def load(cls, path: str | Path) -> "Result":
        """Read a result file written by :meth:`save`."""
        with h5py.File(path, "r") as f:
            signals = {name: ds[()] for name, ds in f["listeners"].items()}
            positions = {name: ds.attrs["position"] for name, ds in f["listeners"].items()}
            metadata = {k: v for k, v in f.attrs.items() if k not in ("scene", "sample_rate")}
            slices = {name: PressureSlice(name=name, axis=str(g.attrs["axis"]),
                                          position=_scalar_or_array(g.attrs["position"]), times=g.attrs["times"],
                                          pressure=g["pressure"][()], solid=g["solid"][()],
                                          origin=g.attrs["origin"], cell_size=float(g.attrs["cell_size"]),
                                          follows=str(g.attrs.get("follows", "")))
                      for name, g in f.get("slices", {}).items()}
            return cls(sample_rate=float(f.attrs["sample_rate"]), signals=signals, positions=positions,
                       scene_text=str(f.attrs.get("scene", "")), metadata=metadata, slices=slices)


def _scalar_or_array(value) -> float | np.ndarray:
    """An HDF5 attribute read back as a float if it holds one number, else as an array."""
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


PART_KIND = "wavesolve chunk part"


@dataclass
class BoxRun:
    """A travelling box's share of a chunk (``wavesolve.travelling``), or of a whole run.

    Attributes:
        start_step: step of its first sample. data: (m·K, steps) its probe signals (Pa) at the step rate.
        shape: its grid's cells. shifts: (3,) cells it moved along each axis.
    """

    start_step: int
    data: np.ndarray
    shape: tuple[int, int, int]
    shifts: np.ndarray


@dataclass
class ChunkPart:
    """One finished chunk of a time-parallel run, as stored in a part file.

    Attributes:
        scene_text, scene_path: the scene it belongs to; plan: the ChunkPlan as JSON; key: SHA-256
        of scene text + plan (parts with equal keys belong together).
        chunk, n_chunks, start_step: which chunk, of how many, and the step of its first sample.
        probes: (groups, probes, steps) step-rate pressures (Pa); stop, wall_time: how it ended.
        slices: slice name → (times, n_a, n_b) the chunk's pressure on the scene's slices (Pa).
        boxes: travelling object name → its box's share of the chunk.
    """

    scene_text: str
    scene_path: str
    plan: str
    key: str
    chunk: int
    n_chunks: int
    start_step: int
    probes: np.ndarray
    stop: str = ""
    wall_time: float = 0.0
    version: str = ""
    slices: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: dict[str, BoxRun] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the part file atomically (temporary file, then rename)."""

        def write(f: h5py.File) -> None:
            f.attrs["kind"] = PART_KIND
            for name in ("scene_path", "plan", "key", "chunk", "n_chunks", "start_step", "stop", "wall_time"):
                f.attrs[name] = getattr(self, name)
            f.attrs["scene"] = self.scene_text
            f.attrs["wavesolve_version"] = self.version
            f.create_dataset("probes", data=np.asarray(self.probes, dtype=np.float64))
            for name, data in self.slices.items():
                f.create_dataset(f"slices/{name}", data=np.asarray(data, dtype=np.float64))
            for name, box in self.boxes.items():
                ds = f.create_dataset(f"boxes/{name}", data=np.asarray(box.data, dtype=np.float64))
                ds.attrs.update(start_step=box.start_step, shape=np.asarray(box.shape), shifts=np.asarray(box.shifts))

        return _write_atomically(path, write)

    @classmethod
    def load(cls, path: str | Path) -> "ChunkPart":
        """Read a part file. Raises ValueError (naming the file) if it is not one."""
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("kind") != PART_KIND:
                    raise ValueError(f"'{path}' is not a wavesolve chunk part file")
                a = f.attrs
                return cls(scene_text=str(a["scene"]), scene_path=str(a["scene_path"]), plan=str(a["plan"]),
                           key=str(a["key"]), chunk=int(a["chunk"]), n_chunks=int(a["n_chunks"]),
                           start_step=int(a["start_step"]), probes=f["probes"][()], stop=str(a["stop"]),
                           wall_time=float(a["wall_time"]), version=str(a.get("wavesolve_version", "")),
                           slices={name: ds[()] for name, ds in f.get("slices", {}).items()},
                           boxes={name: BoxRun(int(ds.attrs["start_step"]), ds[()],
                                               tuple(int(n) for n in ds.attrs["shape"]), ds.attrs["shifts"])
                                  for name, ds in f.get("boxes", {}).items()})
        except OSError as exc:
            raise ValueError(f"cannot read '{path}' as a chunk part file: {exc}") from None

    @staticmethod
    def peek_key(path: str | Path) -> str | None:
        """The key of a part file, or None if the file is missing or not a readable part."""
        try:
            with h5py.File(path, "r") as f:
                return str(f.attrs["key"]) if f.attrs.get("kind") == PART_KIND else None
        except (OSError, KeyError):
            return None


def _write_atomically(path: str | Path, write) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        write(f)
    return path
