"""The discrete energy of the leapfrog scheme (its exact invariant without sources or losses).

For p⁺ = 2p − p⁻ + λ² L p, multiplying by (p⁺ − p⁻) and summing by parts gives the conserved

    E^{n+½} = Σ_cells (p^{n+1} − p^n)² + λ² Σ_edges (D p^{n+1})(D p^n)

where D is the difference across a cell face. It is conserved to rounding while the field is zero
on the grid's outer cells; it is positive for λ ≤ 1/√3. Units: Pa².
"""
from __future__ import annotations

import numpy as np


def leapfrog_energy(p_next: np.ndarray, p: np.ndarray, courant: float) -> float:
    """E^{n+½} (Pa²) from two consecutive pressure fields of the same shape."""
    # astype rather than np.asarray: device (CuPy) fields stay on the device
    a = p_next.astype(np.float64, copy=False)
    b = p.astype(np.float64, copy=False)
    kinetic = float(np.sum((a - b) ** 2))
    potential = sum(float(np.sum(np.diff(a, axis=ax) * np.diff(b, axis=ax))) for ax in range(3))
    return kinetic + courant ** 2 * potential
