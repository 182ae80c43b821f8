"""The one backend switch: which array library and kernels a run uses.

Only the NumPy reference exists so far; ``auto`` resolves to it. Nothing else in the package asks
which backend is active.
"""
from __future__ import annotations

from .errors import WavesolveError

BACKENDS = ("auto", "numpy", "cupy")


class BackendError(WavesolveError):
    """The requested backend cannot run here."""


def resolve_backend(name: str) -> str:
    """Concrete backend name for a request (``auto``, ``numpy`` or ``cupy``)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}': choose one of {', '.join(BACKENDS)}")
    if name == "cupy":
        raise BackendError("the CuPy (GPU) backend is not part of this version yet; use --backend numpy")
    return "numpy"
