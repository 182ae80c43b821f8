"""The CUDA source built for the host CPU: the same per-element code, one loop per kernel.

Used by the tests (and usable by anyone without a GPU) to run the GPU path's arithmetic and its
Python driver (:class:`~wavesolve.kernels.cuda_backend.CudaBackend` with ``xp = numpy``) against the
NumPy reference. ``build_host_library(directory)`` compiles ``cuda/fdtd.cu`` with a host C++
compiler (``g++`` or ``c++``) into a shared library; :class:`HostLauncher` calls its kernels
through ctypes with the argument list the device kernels take.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from .cuda_backend import CUDA_DIR, KERNEL_SUFFIX, ZVEC

#: Host compiler flags: no FMA contraction and no fast-math, so rounding follows the reference.
HOST_FLAGS = ("-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-x", "c++", "-std=c++14")


def host_compiler() -> str | None:
    """Path of a host C++ compiler, or None."""
    for name in ("g++", "c++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def build_host_library(directory: Path) -> Path:
    """Compile cuda/fdtd.cu for the host into ``directory``; returns the library path."""
    compiler = host_compiler()
    if compiler is None:
        raise RuntimeError("no host C++ compiler (g++, c++ or clang++) on PATH")
    out = Path(directory) / "libwavesolve_fdtd_host.so"
    cmd = [compiler, *HOST_FLAGS, f"-DWS_LAYER_VEC_MAX={HostLauncher.layer_vec_max}", f"-I{CUDA_DIR}", "-o",
           str(out), str(CUDA_DIR / "fdtd.cu")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"host build of fdtd.cu failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


def _c_arg(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        if not a.flags.c_contiguous:
            raise ValueError("kernel arrays must be C-contiguous")
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, (np.int64, int)):
        return ctypes.c_longlong(int(a))
    if isinstance(a, np.float32):
        return ctypes.c_float(float(a))
    if isinstance(a, (np.float64, float)):
        return ctypes.c_double(float(a))
    raise TypeError(f"unsupported kernel argument {type(a).__name__}")


class HostLauncher:
    """``launch(name, dtype, n, args)`` runs kernel ``name`` of the host build over n work items."""

    #: The widest layer group the host build holds: all of them, so the tests check each.
    layer_vec_max = ZVEC[0]

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))

    def __call__(self, name: str, dtype: np.dtype, n: int, args: tuple, blocks: tuple | None = None) -> None:
        """``blocks``: the device's launch shape, unused here (the cell kernel loops over the blocks
        its arguments describe)."""
        if n == 0:
            return
        fn = getattr(self.lib, f"{name}_{KERNEL_SUFFIX[np.dtype(dtype)]}")
        fn.restype = None
        fn(ctypes.c_longlong(n), *[_c_arg(a) for a in args])
