"""Event tables in CSV files (impacts, bubbles): one header line of column names, one event a row."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def read_csv_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...], what: str) -> list[dict[str, float]]:
    """Rows of a numeric CSV as name → value dicts (only the columns present).

    Raises ValueError naming the expected header when a required column is missing or an unknown
    one is present, and the row when a value is NaN, Inf or empty. ``what`` names the table
    ("impact", "bubble") in messages.
    """
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64)
    names = data.dtype.names or ()
    missing = [n for n in required if n not in names]
    extra = [n for n in names if n not in required + optional]
    if missing or extra:
        raise ValueError(f"{what} CSV needs the header {','.join(required)} (optional: {', '.join(optional)}); "
                         f"missing {missing}, unknown {extra}")
    rows = []
    for i, row in enumerate(np.atleast_1d(data)):
        values = {n: float(row[n]) for n in names}
        if not all(np.isfinite(list(values.values()))):
            raise ValueError(f"row {i + 1} contains NaN, Inf or an empty field")
        rows.append(values)
    return rows
