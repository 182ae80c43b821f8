"""Exact time-domain solutions used as test oracles (linear acoustics, SI units).

Each ODE is linear with constant coefficients; it is integrated with scipy.signal.lsim on a grid
1000× finer than any simulation step, whose first-order-hold input makes the discretisation error
negligible (< 1e-6 relative) against the tolerances the tests use.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal


def _lsim(num, den, alpha: Callable, t_end: float, n: int = 200_001):
    t = np.linspace(0.0, t_end, n)
    _, y, x = signal.lsim(signal.lti(num, den), alpha(t), t)
    return t, y, x


def pulsating_sphere(alpha: Callable, a: float, c: float, rho: float,
                     r: np.ndarray | float, t: np.ndarray) -> np.ndarray:
    """p(r, t) = f(t − (r−a)/c)/r with f′ + (c/a) f = ρ a c α(t), f(0) = 0 (PHYSICS.md)."""
    tf, f, _ = _lsim([rho * a * c], [1.0, c / a], alpha, float(np.max(t)) + 1e-3)
    return np.interp(t - (np.asarray(r) - a) / c, tf, f, left=0.0) / r


def translating_sphere(alpha: Callable, a: float, c: float, rho: float, r: float, cos_theta: float,
                       t: np.ndarray) -> np.ndarray:
    """p = cosθ [F′(τ)/(c r) + F(τ)/r²], τ = t − (r−a)/c, F″ + (2c/a)F′ + (2c²/a²)F = ρc²aα (PHYSICS.md)."""
    k = rho * c * c * a
    tf, F, _ = _lsim([k], [1.0, 2 * c / a, 2 * c * c / (a * a)], alpha, float(np.max(t)) + 1e-3)
    _, dF, _ = _lsim([k, 0.0], [1.0, 2 * c / a, 2 * c * c / (a * a)], alpha, float(np.max(t)) + 1e-3)
    tau = t - (r - a) / c
    return cos_theta * (np.interp(tau, tf, dF, left=0.0) / (c * r) + np.interp(tau, tf, F, left=0.0) / r ** 2)


#: six listeners on the axes: their mean cancels every odd multipole and the quadrupole (Σ of a
#: degree-2 harmonic over the octahedron's vertices is 0), leaving the monopole and l ≥ 4
AXES = {"xp": (1, 0, 0), "xm": (-1, 0, 0), "yp": (0, 1, 0), "ym": (0, -1, 0), "zp": (0, 0, 1), "zm": (0, 0, -1)}


def axis_listeners(r: float) -> str:
    """Scene TOML of the six ``AXES`` listeners at distance r (m) from the origin."""
    return "".join(f'[[listeners]]\nname = "{n}"\nposition = [{r * x}, {r * y}, {r * z}]\n'
                   for n, (x, y, z) in AXES.items())


def low_passed(result, name: str, cutoff: float = 2000.0) -> np.ndarray:
    """A listener's signal through a 4th-order Butterworth low-pass at ``cutoff`` (Hz), zero phase."""
    sos = signal.butter(4, cutoff, fs=result.sample_rate, output="sos")
    return signal.sosfiltfilt(sos, result.listener(name))


def monopole_match(result, qdot: Callable, r: float, rho: float, c: float,
                   cutoff: float = 2000.0) -> tuple[float, float]:
    """The six ``AXES`` listeners' mean at r (m) against the point monopole ρQ̇(t − r/c)/(4πr),
    Q̇ = ``qdot(times)`` (m³/s², zero before 0), both low-passed at ``cutoff``: (RMS ratio, RMS of
    the difference over the reference's)."""
    t = np.arange(len(result.listener("xp"))) / result.sample_rate
    sos = signal.butter(4, cutoff, fs=result.sample_rate, output="sos")
    want = signal.sosfiltfilt(sos, rho * qdot(np.clip(t - r / c, 0.0, None)) / (4 * np.pi * r))
    mean = sum(low_passed(result, n, cutoff) for n in AXES) / len(AXES)
    norm = float(np.sqrt(np.mean(want ** 2)))
    return float(np.sqrt(np.mean(mean ** 2))) / norm, float(np.sqrt(np.mean((mean - want) ** 2))) / norm


def rel_l2(x: np.ndarray, ref: np.ndarray) -> float:
    """‖x − ref‖₂ / ‖ref‖₂."""
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))
