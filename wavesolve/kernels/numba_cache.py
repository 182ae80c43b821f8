"""Numba's on-disk cache keyed on every source file a compiled function's machine code comes from.

Numba keys a cached function (``cache=True``) on the content of the one file that defines it. A
function that calls jitted functions of other files compiles their code into its own, so after one
of those files changes (an edit, a ``git checkout`` of another branch) Numba loads the old machine
code from its cache without a word: in the seventeenth session the CPU's compiled blocks
(``cpu_blocks.run_block``) went on running the previous branch's field update after ``cpu.py``
had changed, and their results drifted from the step-by-step run's. :func:`key_on_sources` makes
such a function's key cover the other files too.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger("wavesolve")


def source_key(paths: list[Path]) -> bytes:
    """SHA-256 over the contents of ``paths``, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.digest()


def key_on_sources(dispatcher: Any, *modules: ModuleType) -> None:
    """Key the cache of the jitted ``dispatcher`` on its own file and the files of ``modules`` (those
    whose jitted functions it calls, directly or through others). Call it where the function is
    defined, before its first call. Where this Numba's cache is not built as expected (another
    version), caching is turned off for the function rather than risk stale code. With
    ``NUMBA_DISABLE_JIT`` the decorator hands back the plain Python function: nothing to key."""
    if not hasattr(dispatcher, "py_func"):
        return
    paths = [Path(inspect.getfile(dispatcher.py_func)), *(Path(inspect.getfile(m)) for m in modules)]
    index = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if index is not None and hasattr(index, "_source_stamp"):
        index._source_stamp = source_key(paths)
        return
    log.debug("Numba's cache has no source stamp to set for %s: not caching it", dispatcher.py_func.__name__)
    from numba.core.caching import NullCache

    dispatcher._cache = NullCache()
