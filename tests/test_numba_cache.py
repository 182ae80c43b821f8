"""Numba's on-disk cache of a compiled function that calls jitted code of another file
(kernels/numba_cache.py): after that file changes, a fresh process must run the new code."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[1]


def _run(folder: Path) -> list[int]:
    """A fresh process calling both cached functions; their results."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    env.pop("NUMBA_CACHE_DIR", None)            # the in-tree cache, next to the files
    code = "import keyed, unkeyed; print(keyed.f(), unkeyed.f())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [int(x) for x in out.stdout.split()]


def test_cache_follows_the_files_a_function_calls_into(tmp_path):
    """Two cached functions call g() of another file; one is keyed on that file's content
    (``key_on_sources``). After g's file changes, the keyed one gives g's new value in a new
    process. (The other shows what Numba's own key does; it is not asserted, as a later Numba may
    track such files itself.)"""
    callee = tmp_path / "callee.py"
    callee.write_text("from numba import njit\n\n@njit(cache=True)\ndef g():\n    return 1\n")
    caller = textwrap.dedent("""
        from numba import njit
        import callee
        from wavesolve.kernels.numba_cache import key_on_sources

        @njit(cache=True)
        def f():
            return callee.g() * 10
        """)
    (tmp_path / "keyed.py").write_text(caller + "\nkey_on_sources(f, callee)\n")
    (tmp_path / "unkeyed.py").write_text(caller)
    assert _run(tmp_path) == [10, 10]
    assert _run(tmp_path) == [10, 10]                   # now from the cache
    callee.write_text("from numba import njit\n\n@njit(cache=True)\ndef g():\n    return 2\n")
    keyed, unkeyed = _run(tmp_path)
    assert keyed == 20
    print(f"Numba's own key after the change: {unkeyed} ({'stale' if unkeyed == 10 else 'fresh'})")


def test_kernels_import_with_the_jit_disabled():
    """NUMBA_DISABLE_JIT=1 (Numba's switch for stepping through kernels in a debugger) makes the
    decorators hand back plain functions; the kernels' modules must still import."""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", "import wavesolve.kernels.cpu_blocks"], env=env, check=True,
                   capture_output=True)
