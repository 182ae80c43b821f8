"""Subnormal numbers flushed to zero inside the compiled CPU step (x86-64: the MXCSR's FTZ and DAZ).

A field holds subnormal values (|x| below 1.18e-38 in float32, 2.2e-308 in float64) wherever a
wave is still arriving or has nearly died away: the leapfrog's exponentially small precursor
ahead of every front, the absorbing layer's damped tails, the last decay of a ringing object.
An x86 core takes a microcode assist of the order of a hundred cycles for each operation that
reads or makes one. With 1–3 % of a 200³ field's values subnormal, the compiled step took twice
as long (bench/RESULTS.md, "Subnormal numbers").

``flush_subnormals()`` sets flush-to-zero (results) and denormals-are-zero (inputs) on the calling
thread and returns the thread's previous mode; ``restore_subnormals(mode)`` puts it back. A kernel
calls the pair around its own work (in each ``prange`` body, on the thread that runs it), so
NumPy and the caller keep IEEE subnormals. Values that would be subnormal become 0, which changes
a pressure by less than 1.2e-38 Pa (float32); on normal numbers the kernels still match the NumPy
reference bit for bit.

Elsewhere than on x86-64 both are no-ops: ARM cores handle subnormals in hardware at full speed.
"""
from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

#: MXCSR bits: FTZ (bit 15: a subnormal result becomes 0) and DAZ (bit 6: a subnormal input reads as 0)
FTZ_DAZ = 0x8040
#: whether this machine's Numba code can set them
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _mxcsr(builder, name: str, slot) -> None:
    """Call LLVM's ``llvm.x86.sse.{st,ld}mxcsr`` on the 32-bit stack slot ``slot``."""
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p]), name)
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def _read_mxcsr(typingctx):
    """The calling thread's MXCSR (int64)."""
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.zext(builder.load(slot), ir.IntType(64))
    return types.int64(), codegen


@intrinsic
def _write_mxcsr(typingctx, mode):
    """Set the calling thread's MXCSR to ``mode`` (int64, low 32 bits)."""
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
        _mxcsr(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.none(types.int64), codegen


if X86_64:
    @njit(cache=True, inline="always")
    def flush_subnormals():
        """Set FTZ and DAZ on this thread; returns its previous MXCSR (for ``restore_subnormals``)."""
        mode = _read_mxcsr()
        _write_mxcsr(mode | FTZ_DAZ)
        return mode

    @njit(cache=True, inline="always")
    def restore_subnormals(mode):
        """Put back this thread's MXCSR as ``flush_subnormals`` found it."""
        _write_mxcsr(mode)
else:
    @njit(cache=True, inline="always")
    def flush_subnormals():
        """No-op off x86-64 (module docstring); returns 0."""
        return 0

    @njit(cache=True, inline="always")
    def restore_subnormals(mode):
        """No-op off x86-64."""
        return None
