"""Lookups of flat cell indices (or other integer keys) in sorted arrays, for the boundary's
bookkeeping (``boundary_keys``, ``flux_balance``)."""
from __future__ import annotations

import numpy as np


def in_sorted(haystack: np.ndarray, needles: np.ndarray, find=np.searchsorted) -> np.ndarray:
    """Whether each needle is in the ascending ``haystack`` (bool, like needles); ``find`` is
    np.searchsorted, or geometry_kernels.sorted_positions for ascending needles."""
    if not len(haystack):
        return np.zeros(len(needles), dtype=bool)
    pos = np.minimum(find(haystack, needles), len(haystack) - 1)
    return haystack[pos] == needles


def finder(keys: np.ndarray):
    """f(queries) → the position of each query in ``keys`` (distinct), or −1."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]

    def find(queries: np.ndarray) -> np.ndarray:
        if not len(ordered):
            return np.full(len(queries), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(ordered, queries), len(ordered) - 1)
        return np.where(ordered[pos] == queries, order[pos], -1).astype(np.int64)
    return find
