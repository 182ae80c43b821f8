"""The one backend switch: which array library and kernels a run uses.

``resolve_backend(name)`` returns a :class:`Backend`; the Simulation builds its arrays and kernels
through it and never asks which one it got. Backends:

- ``numpy``: the reference (array slicing; ``kernels/reference.py`` and ``AbsorbingLayer.step``).
- ``numba``: the fused compiled CPU step (``kernels/cpu.py``); ghost cells, listeners and solid
  cells as in the reference.
- ``cupy``: CUDA kernels (``kernels/cuda/fdtd.cu``) compiled at run time by CuPy; the fields, the
  layer, ghost cells and listener samples stay on the GPU (``kernels/cuda_backend.py``).
- ``auto``: ``cupy`` where CuPy finds a usable GPU, else ``numba``, else ``numpy``.

Numba and CuPy are imported only when their backend is chosen.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from .errors import WavesolveError

log = logging.getLogger("wavesolve")

BACKENDS = ("auto", "numpy", "numba", "cupy")


class BackendError(WavesolveError):
    """The requested backend cannot run here."""


class FieldUpdate(Protocol):
    def __call__(self, p: Any, out: Any) -> None:
        """Write p⁺ into ``out`` (which holds p⁻) on every cell, absorbing layer included."""


def cgroup_free(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this machine's or container's cgroup memory limit (v2: ``memory.max`` −
    ``memory.current``; v1: ``memory/memory.limit_in_bytes`` − ``memory/memory.usage_in_bytes``), or
    None where there is no limit (or no cgroup files: not Linux). A container sees the host's
    memory in /proc/meminfo, so without this a run could pass the check and be killed at the limit."""
    for limit, usage in (("memory.max", "memory.current"),
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            cap = (root / limit).read_text().strip()
            used = int((root / usage).read_text())
        except (OSError, ValueError):
            continue
        if cap == "max" or int(cap) >= 2 ** 60:       # v1 writes "no limit" as about 2⁶³
            return None
        return max(0, int(cap) - used)
    return None


class Backend:
    """Arrays and kernels of one backend. Subclasses override what differs from the host reference.

    Attributes:
        name: the concrete backend (``numpy``, ``numba`` or ``cupy``).
        xp: the array module of its fields (numpy or cupy).
    """

    name = "numpy"
    #: the absorbing layer's z-slabs stored y fastest (``AbsorbingLayer``): what this backend's kernel reads
    z_slabs_y_fastest = False
    #: copies of the layer's face velocities the field update holds (the GPU's reads one, writes another)
    velocity_buffers = 1
    #: whether the field kernels run on the host's cores (threads): then a run holds BLAS (the
    #: shaders' products) to one thread, since OpenBLAS's threads spin after each call and take the
    #: cores from the kernels (bench/RESULTS.md: 2.3× slower steps on 2 cores)
    host_threads = False
    xp: Any = np

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """A zero array on this backend's device."""
        return self.xp.zeros(shape, dtype=dtype)

    def asarray(self, a: np.ndarray) -> Any:
        """A host array moved to this backend's device."""
        return self.xp.asarray(a)

    def to_host(self, a: Any) -> np.ndarray:
        """A backend array as a NumPy array."""
        return np.asarray(a)

    def available_bytes(self) -> int:
        """Memory this backend's arrays can still take now (bytes): the host's available memory
        (free plus reclaimable caches, ``psutil.virtual_memory().available``), or less where a
        container's memory limit leaves less (``cgroup_free``)."""
        import psutil

        free = int(psutil.virtual_memory().available)
        capped = cgroup_free()
        return free if capped is None else min(free, capped)

    def field_bytes(self, grid, itemsize: int) -> int:
        """Bytes that grow with the grid: the two pressure fields, the absorbing layer's split
        pressures and ``velocity_buffers`` copies of its face velocities, and the field update's
        own working space (``plan.estimate``, bench/memory.py)."""
        from .absorbing import AbsorbingLayer

        return 2 * grid.cells * itemsize + AbsorbingLayer.estimate_bytes(grid, itemsize, self.velocity_buffers)

    def field_update(self, grid, layer, dtype: np.dtype) -> FieldUpdate:
        """The step's field update (leapfrog interior + absorbing layer)."""
        from .kernels.reference import ReferenceUpdate

        return ReferenceUpdate(grid, layer, dtype)

    def ghost_cells(self, ghosts, dtype: np.dtype):
        """An object with the ghost cells' attributes whose ``apply(p, accel, density)`` works on p."""
        return ghosts

    def probes(self, probes):
        """An object whose ``sample(p)`` returns listener pressures for this backend's fields."""
        return probes

    def recorder(self, out: np.ndarray) -> "Recorder":
        """Collects per-step samples into the host array ``out`` (listeners × steps)."""
        return Recorder(out)

    def zero_cells(self, a: Any, index: Any) -> None:
        """a.flat[index] = 0 (solid cells after the update); ``index`` a device array of flat indices."""
        a.reshape(-1)[index] = 0

    def copy_cells(self, a: Any, source: Any, target: Any) -> None:
        """a.flat[target] = a.flat[source]; ``source`` and ``target`` arrays of flat indices on this
        backend, no index in both."""
        flat = a.reshape(-1)
        flat[target] = flat[source]

    def sample_and_update(self, update: FieldUpdate, probes, p: Any, out: Any, samples: Any = None) -> Any:
        """The listeners' pressures at p (``probes.sample(p, samples)``; returned), then the field
        update p → ``out``. The GPU runs both in one launch."""
        samples = probes.sample(p, samples)
        update(p, out)
        return samples

    def close_update(self, ghosts, p: Any, out: Any, lam2: float, solid: Any) -> None:
        """After the field update (and point sources): the one-cell-thick parts' correction of
        ``out`` (``ghosts.correct_thin_parts``), then its cells ``solid`` held at zero. The GPU runs
        both in one launch."""
        ghosts.correct_thin_parts(p, out, lam2)
        self.zero_cells(out, solid)

    def peak(self, a: Any) -> float:
        """max |a| over the array (Pa for a field); NaN if it holds a NaN, inf if an inf."""
        xp = self.xp
        return float(xp.maximum(xp.max(a), -xp.min(a)))

    def mirror_floor(self, p: Any, grid) -> None:
        """Rigid floor on the box's bottom face: below the interior, the rows under it mirror the
        rows above (p(z) = p(−z) about the floor). The first row gives ∂p/∂z = 0 at the face, exact
        for the 7-point stencil (the layer has v_z = 0 there); the deeper ones are what image-point
        stencils of a body near the floor read. The layer below the floor is not stepped."""
        L, m = grid.layer, grid.mirror_rows
        nx, ny, _ = grid.shape
        p[L:nx - L, L:ny - L, L - m:L] = p[L:nx - L, L:ny - L, L + m - 1:L - 1:-1]

    def block_runner(self, sim) -> Any:
        """An object whose ``run(sim, out, bar)`` advances ``sim`` by whole blocks of steps recorded
        once (the GPU: kernels/cuda_blocks.py), or None: every step is run on its own."""
        return None


class Recorder:
    """Stores step k's samples in column k of a host array (host backends: directly)."""

    def __init__(self, out: np.ndarray) -> None:
        self.out = out

    def put(self, k: int, samples: Any) -> None:
        self.out[:, k] = samples

    def flush(self) -> None:
        """Make every sample put so far visible in ``out``."""


class NumbaBackend(Backend):
    """The fused compiled CPU step; ghost cells and probes as in the reference (host, cheap)."""

    name = "numba"
    z_slabs_y_fastest = True
    host_threads = True

    def field_bytes(self, grid, itemsize: int) -> int:
        from .kernels.cpu import FusedUpdate

        return super().field_bytes(grid, itemsize) + FusedUpdate.working_bytes(grid, itemsize)

    def field_update(self, grid, layer, dtype: np.dtype) -> FieldUpdate:
        from .kernels.cpu import FusedUpdate

        return FusedUpdate(grid, layer, dtype)

    def zero_cells(self, a: Any, index: Any) -> None:
        from .kernels.cpu import zero_cells

        zero_cells(a.reshape(-1), index)

    def close_update(self, ghosts, p: Any, out: Any, lam2: float, solid: Any) -> None:
        from .kernels.cpu import close_cells

        close_cells(out.reshape(-1), p.reshape(-1), *ghosts.thin_links(), float(lam2), solid)

    def mirror_floor(self, p: Any, grid) -> None:
        from .kernels.cpu import mirror_floor

        mirror_floor(p, grid.layer, grid.mirror_rows)

    def block_runner(self, sim) -> Any:
        """Compiled blocks of steps (kernels/cpu_blocks.py) where the ghost cells have a static
        operator; else None."""
        from .kernels.cpu_blocks import CompiledBlocks

        operator = sim.ghosts.compiled_operator()
        return None if operator is None else CompiledBlocks(sim, operator)

    def peak(self, a: Any) -> float:
        from .kernels.cpu import peak

        return peak(a.reshape(-1))


def _numba_backend() -> Backend:
    try:
        import numba  # noqa: F401 - only checks that Numba is installed
    except ImportError as exc:
        raise BackendError(f"the numba backend needs Numba ({exc}); install it with "
                           "'python3 -m pip install numba', or use --backend numpy") from exc
    return NumbaBackend()


def _cupy_backend() -> Backend:
    try:
        import cupy
    except ImportError as exc:
        raise BackendError("the cupy backend needs CuPy and a CUDA GPU: install it with "
                           "'python3 -m pip install \"wavesolve[gpu]\"', or use --backend numba") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendError(f"the cupy backend found no usable CUDA GPU ({exc}); use --backend numba") from exc
    if count < 1:
        raise BackendError("the cupy backend found no CUDA GPU; use --backend numba")
    from .kernels.cuda_backend import CupyBackend

    return CupyBackend(cupy)


_FACTORIES: dict[str, Callable[[], Backend]] = {
    "numpy": Backend,
    "numba": _numba_backend,
    "cupy": _cupy_backend,
}


def picks_gpu(name: str) -> bool:
    """Whether a request (``auto``, ``numpy``, ``numba``, ``cupy``) would run on a GPU, found
    without starting one (no CUDA context, no kernels compiled): ``cupy``, or ``auto`` where CuPy
    imports and sees a device."""
    if name != "auto":
        return name == "cupy"
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, or no usable driver
        return False


def resolve_backend(name: "str | Backend") -> Backend:
    """The backend for a request: ``auto``, ``numpy``, ``numba`` or ``cupy`` (a Backend passes through).

    Raises BackendError when the name is unknown or the backend cannot run here.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}': choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return _FACTORIES[name]()
    for candidate in ("cupy", "numba"):
        try:
            backend = _FACTORIES[candidate]()
        except BackendError as exc:
            log.debug("auto backend: %s unavailable: %s", candidate, exc)
            continue
        log.info("auto backend: %s", candidate)
        return backend
    return Backend()
