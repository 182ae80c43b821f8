"""Modal oscillators stepped exactly: the impulse-invariant recursion, vectorised over modes.

Each mode obeys q̈ + 2ξωq̇ + ω²q = f(t) (mass-normalised shapes: f = Uᵀ·force). With the force
applied as an impulse gₖ at each sample time tₖ = kΔt (gₖ = the force's integral over the step),
the response is exact at the samples (PHYSICS.md):

    q_k = 2ε cosθ q_{k−1} − ε² q_{k−2} + (ε sinθ/ω_d) g_{k−1},   ε = e^{−ξωΔt}, θ = ω_dΔt,

with ω_d = ω√(1 − ξ²). :func:`impulse_invariant_response` is that recursion literally.
:class:`ModalOscillators` steps the same discretisation in its two-state form (q, q̇): an impulse
adds to q̇ at a sample, then the exact free motion carries (q, q̇) to the next sample. Eliminating
q̇ gives the recursion above (tests check both against the closed form), and the state form also
gives q̇ and q̈ exactly at any time between samples, without dividing by sin θ.
"""
from __future__ import annotations

import numpy as np


def _check(omega: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    omega = np.atleast_1d(np.asarray(omega, dtype=np.float64))
    xi = np.broadcast_to(np.asarray(xi, dtype=np.float64), omega.shape).copy()
    if np.any(omega <= 0) or not np.all(np.isfinite(omega)):
        raise ValueError("modal angular frequencies must be positive and finite")
    if np.any(xi < 0) or np.any(xi >= 1):
        raise ValueError("damping ratios must lie in [0, 1) (under-damped modes)")
    return omega, xi


def impulse_invariant_response(omega, xi, dt: float, impulses: np.ndarray) -> np.ndarray:
    """q at the samples 0 … n−1 for modal impulses (n, modes) applied at the samples.

    The recursion of PHYSICS.md, written out; starts at rest (q₀ = q₋₁ = 0).
    """
    omega, xi = _check(omega, xi)
    g = np.asarray(impulses, dtype=np.float64).reshape(len(impulses), -1)
    wd = omega * np.sqrt(1.0 - xi * xi)
    eps = np.exp(-xi * omega * dt)
    a1, a2, b = 2.0 * eps * np.cos(wd * dt), -eps * eps, eps * np.sin(wd * dt) / wd
    q = np.zeros((len(g), len(omega)))
    prev, cur = np.zeros(len(omega)), np.zeros(len(omega))
    for k in range(1, len(g)):
        prev, cur = cur, a1 * cur + a2 * prev + b * g[k - 1]
        q[k] = cur
    return q


def free_motion(omega, sigma, wd, s):
    """Exact free motion of q̈ + 2σq̇ + ω²q = 0 over a time s (under-damped, ω_d = √(ω² − σ²)).

    Returns (c_qq, c_qv, c_vq, c_vv) with q' = c_qq q + c_qv q̇, q̇' = c_vq q + c_vv q̇; arrays broadcast.
    """
    e = np.exp(-sigma * s)
    c, sn = np.cos(wd * s), np.sin(wd * s)
    return (e * (c + sigma * sn / wd), e * sn / wd, -e * omega ** 2 * sn / wd, e * (c - sigma * sn / wd))


class ModalOscillators:
    """A bank of damped modal oscillators sampled every ``dt`` seconds, state (q, q̇) per mode.

    ``advance(g)`` applies the modal impulses g (N·s/√kg for mass-normalised modes) at the
    current sample and moves to the next one; ``at(s)`` gives (q, q̇) a time s ∈ [0, dt) after the
    current sample (after its impulse). Exact for impulsive forcing at the samples.
    """

    def __init__(self, omega, xi, dt: float) -> None:
        self.omega, self.xi = _check(omega, xi)
        self.dt = float(dt)
        self.sigma = self.xi * self.omega
        self.wd = self.omega * np.sqrt(1.0 - self.xi ** 2)
        self._phi = self._transition(self.dt)
        self.k = 0
        self.q = np.zeros_like(self.omega)
        self.v = np.zeros_like(self.omega)

    def _transition(self, s):
        """Free-motion transition coefficients over time s (see :func:`free_motion`)."""
        return free_motion(self.omega, self.sigma, self.wd, s)

    def restart(self) -> None:
        """Back to rest at sample 0."""
        self.k = 0
        self.q[:] = 0.0
        self.v[:] = 0.0

    def advance(self, g: np.ndarray | float = 0.0) -> None:
        """Apply impulses g at sample k, then move the state to sample k + 1."""
        v = self.v + g
        cqq, cqv, cvq, cvv = self._phi
        self.q, self.v = cqq * self.q + cqv * v, cvq * self.q + cvv * v
        self.k += 1

    def jump(self, samples: int) -> None:
        """Move the state ``samples`` samples on with no impulses, by the exact free motion over
        samples·dt in one transition: equal to ``samples`` calls of ``advance()`` up to rounding
        (relative 1e-16 times the phase ω_d·samples·dt in radians, from the cosine and sine)."""
        self.q, self.v = self.at(samples * self.dt)
        self.k += int(samples)

    def at(self, s: float, g: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(q, q̇) at time s after the current sample, with impulses g applied at the sample."""
        v = self.v + g
        cqq, cqv, cvq, cvv = self._transition(s)
        return cqq * self.q + cqv * v, cvq * self.q + cvv * v

    def acceleration(self, q: np.ndarray, v: np.ndarray, force: np.ndarray | float = 0.0) -> np.ndarray:
        """q̈ = f − 2ξωq̇ − ω²q."""
        return force - 2.0 * self.sigma * v - self.omega ** 2 * q

    def energy(self) -> np.ndarray:
        """Energy per mode ½q̇² + ½ω²q² (J, for mass-normalised modes) at the current sample."""
        return 0.5 * self.v ** 2 + 0.5 * (self.omega * self.q) ** 2


def damped_impulse_response(omega, xi, t: np.ndarray) -> np.ndarray:
    """Closed form h(t) = e^{−ξωt} sin(ω_d t)/ω_d for t ≥ 0 (0 before): response to a unit impulse."""
    omega, xi = _check(omega, xi)
    t = np.asarray(t, dtype=np.float64)[:, None]
    wd = omega * np.sqrt(1.0 - xi * xi)
    return np.where(t >= 0, np.exp(-xi * omega * t) * np.sin(wd * t) / wd, 0.0)
