"""Relative L2 difference of the listener signals of two result files (e.g. GPU against CPU).

    python3 bench/compare_results.py A.h5 B.h5

Prints, per listener, ‖a − b‖ / ‖b‖ over the whole signal, and the wall time each file records.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavesolve import Result  # noqa: E402


def main() -> None:
    a, b = (Result.load(p) for p in sys.argv[1:3])
    for name in b.names:
        x, y = a.listener(name), b.listener(name)
        n = min(len(x), len(y))
        err = float(np.linalg.norm(x[:n] - y[:n]) / max(np.linalg.norm(y[:n]), 1e-300))
        print(f"{name}: relative L2 difference {err:.2e} ({n} samples, peak {np.max(np.abs(y)):.3g} Pa)")
    for path, r in zip(sys.argv[1:3], (a, b)):
        print(f"{path}: backend {r.metadata.get('backend')}, wall time {r.metadata.get('wall_time', float('nan')):.1f} s")


if __name__ == "__main__":
    main()
