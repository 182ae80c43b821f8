"""Bubble acoustics: Minnaert frequency, damping, entrainment forcing, the oscillators, surface coupling.

A gas bubble of radius r in water rings as a damped oscillator in its volume displacement v (m³):

    v̈ + 2βv̇ + ω²v = F(t)/m,   m = ρ_w/(4πr) (kg/m⁴),  F the forcing pressure (Pa).

- **Frequency** (Minnaert with surface tension; linearised Rayleigh–Plesset with a polytropic gas
  at the Laplace pressure p_in = p₀ + 2σ/r):  ω₀² = (3γp_in − 2σ/r)/(ρ_w r²), f₀ ≈ 3.26/r Hz·m.
  PHYSICS.md writes 3γp₀ for 3γp_in; the difference, 6γσ/r, is 0.14 % of 3γp₀ at r = 1 mm.
  The hydrostatic pressure of the depth is neglected (+0.05 % in f at 1 cm).
- **Near the free surface** the negative image lowers the radiation mass to m(1 − r/(2d))
  (Strasberg 1953, JASA 25), so ω² = ω₀²/(1 − r/(2d)): the pitch rises as a bubble at depth d rises
  toward the surface (d(t) = d₀ − u·t, stopping at 2r where the expansion in r/d is still fair:
  at most +15 %).
- **Damping** δ = δ_rad + δ_vis + δ_th (PHYSICS.md): δ_rad = ωr/c_w, δ_vis = 4μ/(ρ_w ω r²), δ_th the
  closed form of Devin's thermal damping, δ_th = 2[√(Φ−3) − (3γ−1)/(3(γ−1))]/(Φ−4),
  Φ = 16G_th/(9(γ−1)²f), G_th = 3γp₀/(4πρ_w D_air). δ is the damping relative to the ringing
  frequency (δ = 2β/ω_d), so the decay rate is β = ωδ/√(δ² + 4) and ω_d = √(ω² − β²).
- **Entrainment forcing** (the shape of Czerski & Deane's jet model, JASA 2010): F/m = −g₀ (t/τ)² on
  [0, τ), τ = min(0.6 ms, half a Minnaert period), then 0. g₀ is set so that the free ringing
  left after τ (undamped) has the volume amplitude 4π ε r³, i.e. a radius amplitude ε r; ε, the
  random "jet parameter", is each bubble's ``amplitude`` (a modelling choice: Czerski & Deane
  relate the forcing to the neck's collapse, not to a given amplitude).
- **Coupling to the free surface** (a flat pressure-release plane above the bubble, normal n_s):
  the bubble and its negative image give the water an incompressible near field whose normal
  velocity on the plane is V̇ d/(2π(s² + d²)^{3/2}) (s the horizontal distance), integrating to
  exactly V̇ over the plane; so aₙ(x) = V̈(t) d/(2π(s² + d²)^{3/2}). Over a finite free surface bounded
  by rigid walls (a bowl) all of V̇ still leaves through the surface: the kernel is divided by the
  fraction Φ_s = Ω/(2π) of it that the face captures (Ω the solid angle of the face at the bubble).

The oscillators are stepped at an internal rate: each step the forcing's integral over the step
is applied as an impulse and the exact free motion (``wavesolve.modal.free_motion``) of the
oscillator with that step's ω and β carries the state to the next sample — exact when the
frequency is constant (no rise), and the rising pitch is a piecewise-constant ω at the internal
rate otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import constants as k
from .modal import free_motion

#: longest entrainment forcing (s): Czerski & Deane's jet lasts about 0.6 ms
JET_DURATION_MAX = 6e-4
#: default internal step rate of the bubble oscillators (Hz); at least 16× the highest bubble frequency is used
DEFAULT_RATE = 192_000.0


@dataclass(frozen=True)
class Water:
    """Properties of the water and of the gas in its bubbles (SI; defaults: ``wavesolve.constants``)."""

    density: float = k.WATER_DENSITY
    sound_speed: float = k.WATER_SOUND_SPEED
    surface_tension: float = k.WATER_SURFACE_TENSION
    viscosity: float = k.WATER_VISCOSITY
    ambient_pressure: float = k.AMBIENT_PRESSURE
    gamma: float = k.AIR_HEAT_RATIO
    thermal_diffusivity: float = k.AIR_THERMAL_DIFFUSIVITY


WATER = Water()


def minnaert_omega(radius: ArrayLike, water: Water = WATER) -> np.ndarray:
    """Minnaert angular frequency ω₀ (rad/s) with surface tension, for radius (m); arrays broadcast."""
    r = np.asarray(radius, dtype=np.float64)
    p_in = water.ambient_pressure + 2.0 * water.surface_tension / r
    return np.sqrt((3.0 * water.gamma * p_in - 2.0 * water.surface_tension / r) / (water.density * r * r))


def surface_mass_factor(radius: ArrayLike, depth: ArrayLike) -> np.ndarray:
    """Radiation-mass factor 1 − r/(2d) of a bubble at depth d (m) under a free surface (Strasberg)."""
    return 1.0 - np.asarray(radius, dtype=np.float64) / (2.0 * np.asarray(depth, dtype=np.float64))


def damping_terms(radius: ArrayLike, omega: ArrayLike, water: Water = WATER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(δ_rad, δ_vis, δ_th), dimensionless, of a bubble of radius r (m) ringing at ω (rad/s)."""
    r = np.asarray(radius, dtype=np.float64)
    w = np.asarray(omega, dtype=np.float64)
    g = water.gamma
    d_rad = w * r / water.sound_speed
    d_vis = 4.0 * water.viscosity / (water.density * w * r * r)
    g_th = 3.0 * g * water.ambient_pressure / (4.0 * math.pi * water.density * water.thermal_diffusivity)
    phi = 16.0 * g_th / (9.0 * (g - 1.0) ** 2 * (w / (2.0 * math.pi)))
    d_th = 2.0 * (np.sqrt(phi - 3.0) - (3.0 * g - 1.0) / (3.0 * (g - 1.0))) / (phi - 4.0)
    return d_rad, d_vis, d_th


def decay_rate(radius: ArrayLike, omega: ArrayLike, water: Water = WATER) -> np.ndarray:
    """Amplitude decay rate β = ωδ/√(δ² + 4) (1/s), δ = δ_rad + δ_vis + δ_th."""
    delta = sum(damping_terms(radius, omega, water))
    return np.asarray(omega) * delta / np.sqrt(delta * delta + 4.0)


def jet_duration(omega: ArrayLike) -> np.ndarray:
    """Duration τ (s) of the entrainment forcing: min(0.6 ms, half a period π/ω)."""
    return np.minimum(JET_DURATION_MAX, math.pi / np.asarray(omega, dtype=np.float64))


def jet_gain(radius: ArrayLike, amplitude: ArrayLike, omega: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """g₀ (m³/s²) of F/m = −g₀(t/τ)² such that the undamped ringing after τ has volume amplitude 4π ε r³.

    Undamped response to (t/τ)² from rest: x = [t²/ω² − 2/ω⁴ + 2cos(ωt)/ω⁴]/τ²,
    ẋ = [2t/ω² − 2 sin(ωt)/ω³]/τ²; the ringing amplitude after τ is √(x² + (ẋ/ω)²) at τ.
    """
    w, tau = np.asarray(omega, dtype=np.float64), np.asarray(tau, dtype=np.float64)
    x = (tau ** 2 / w ** 2 - 2.0 / w ** 4 + 2.0 * np.cos(w * tau) / w ** 4) / tau ** 2
    xd = (2.0 * tau / w ** 2 - 2.0 * np.sin(w * tau) / w ** 3) / tau ** 2
    return 4.0 * math.pi * np.asarray(amplitude) * np.asarray(radius) ** 3 / np.hypot(x, xd / w)


def jet_force(s: ArrayLike, g0: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """F/m (m³/s²) at bubble-local times s (s): −g₀ (s/τ)² on [0, τ), 0 elsewhere."""
    s = np.asarray(s, dtype=np.float64)
    return np.where((s >= 0) & (s < tau), -g0 * (s / tau) ** 2, 0.0)


def jet_impulse(a: ArrayLike, b: ArrayLike, g0: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """∫ₐᵇ F/m ds (m³/s) of the entrainment forcing (a ≤ b, bubble-local times)."""
    lo = np.clip(a, 0.0, tau)
    hi = np.clip(b, 0.0, tau)
    return -g0 * (hi ** 3 - lo ** 3) / (3.0 * tau ** 2)


class BubbleOscillators:
    """Bubble volume oscillators, each on its own clock: sample j of bubble i is at birthᵢ + jΔt.

    Arrays (B,) per bubble: ``radius`` (m), ``depth`` (m, at birth, under the free surface),
    ``rise_speed`` (m/s), ``g0``/``tau`` (the jet forcing). State: v (m³), v̇ (m³/s) and the sample
    index of every bubble. ``advance_to(j)`` steps every bubble i to its sample jᵢ;
    ``acceleration(s)`` gives V̈ at bubble-local times s (within the current sample's step).
    """

    def __init__(self, radius: ArrayLike, depth: ArrayLike, rise_speed: ArrayLike, amplitude: ArrayLike, dt: float,
                 water: Water = WATER) -> None:
        self.radius = np.asarray(radius, dtype=np.float64)
        self.depth0 = np.asarray(depth, dtype=np.float64)
        self.rise = np.broadcast_to(np.asarray(rise_speed, dtype=np.float64), self.radius.shape).copy()
        self.water = water
        self.dt = float(dt)
        self.omega0 = minnaert_omega(self.radius, water)
        w_birth = self.omega(np.zeros_like(self.radius))
        self.tau = jet_duration(w_birth)
        self.g0 = jet_gain(self.radius, amplitude, w_birth, self.tau)
        self.restart()

    def restart(self) -> None:
        """All bubbles back to rest at their sample 0 (birth)."""
        self.j = np.zeros(len(self.radius), dtype=np.int64)
        self.v = np.zeros(len(self.radius))
        self.w = np.zeros(len(self.radius))

    def depth(self, s: ArrayLike, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Depth (m) under the free surface at bubble-local time s: d₀ − u s, stopping at 2r (or d₀ if
        born shallower): the image model is Strasberg's expansion for d ≫ r, kept to d ≥ 2r (+15 %)."""
        floor = np.minimum(self.depth0[idx], 2.0 * self.radius[idx])
        return np.maximum(self.depth0[idx] - self.rise[idx] * np.maximum(s, 0.0), floor)

    def omega(self, s: ArrayLike, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Undamped angular frequency (rad/s) at bubble-local time s (Minnaert raised by the surface image)."""
        return self.omega0[idx] / np.sqrt(surface_mass_factor(self.radius[idx], self.depth(s, idx)))

    def _coefficients(self, s, idx):
        w = self.omega(s, idx)
        beta = decay_rate(self.radius[idx], w, self.water)
        return w, beta, np.sqrt(w * w - beta * beta)

    def _impulse(self, idx):
        s = self.j[idx] * self.dt
        return jet_impulse(s - 0.5 * self.dt, s + 0.5 * self.dt, self.g0[idx], self.tau[idx])

    def advance_to(self, target: ArrayLike) -> None:
        """Step every bubble i whose sample is below target[i] up to it (targets below stay put)."""
        target = np.asarray(target, dtype=np.int64)
        if np.any(target < self.j):
            raise ValueError("bubble oscillators only step forward (restart() first)")
        while True:
            idx = np.flatnonzero(self.j < target)
            if idx.size == 0:
                return
            v, w = self.v[idx], self.w[idx] + self._impulse(idx)
            om, beta, wd = self._coefficients((self.j[idx] + 0.5) * self.dt, idx)
            cqq, cqv, cvq, cvv = free_motion(om, beta, wd, self.dt)
            self.v[idx], self.w[idx] = cqq * v + cqv * w, cvq * v + cvv * w
            self.j[idx] += 1

    def advance_recording(self, target: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`advance_to` for bubbles idx (B,) up to samples target (B,), keeping the states passed:
        returns (j0 (B,), v, w (M + 1, B)) where row m holds the state at sample j0 + m (a bubble
        that has reached its target keeps it in the rows after). Same arithmetic as advance_to."""
        idx = np.asarray(idx, dtype=np.int64)
        j0 = self.j[idx].copy()
        steps = np.maximum(np.asarray(target, dtype=np.int64) - j0, 0)
        m_total = int(steps.max()) if idx.size else 0
        v_hist, w_hist = np.empty((m_total + 1, idx.size)), np.empty((m_total + 1, idx.size))
        v, w = self.v[idx].copy(), self.w[idx].copy()
        v_hist[0], w_hist[0] = v, w
        if m_total:
            # every step's coefficients and impulse at once (they depend on the sample alone)
            samples = j0[None, :] + np.arange(m_total)[:, None]
            base = samples * self.dt
            om, beta, wd = self._coefficients((samples + 0.5) * self.dt, idx)
            cqq, cqv, cvq, cvv = free_motion(om, beta, wd, self.dt)
            impulse = jet_impulse(base - 0.5 * self.dt, base + 0.5 * self.dt, self.g0[idx], self.tau[idx])
            for m in range(m_total):
                go = steps > m
                wm = w + impulse[m]
                v, w = np.where(go, cqq[m] * v + cqv[m] * wm, v), np.where(go, cvq[m] * v + cvv[m] * wm, w)
                v_hist[m + 1], w_hist[m + 1] = v, w
        self.v[idx], self.w[idx], self.j[idx] = v, w, j0 + steps
        return j0, v_hist, w_hist

    def acceleration(self, s: ArrayLike, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """V̈ (m³/s²) of bubbles idx at bubble-local times s, within the step after their current
        sample j or the step before it (free motion run backward from sample j: no impulse lies
        strictly between samples, so that is exact too — a solver may ask one step back)."""
        return self.acceleration_from(s, self.j[idx], self.v[idx], self.w[idx], idx)

    def acceleration_from(self, s: ArrayLike, j: ArrayLike, v: ArrayLike, w: ArrayLike,
                          idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """:meth:`acceleration` from given states: sample j and (v, v̇) there, arrays that broadcast
        with the bubbles idx (e.g. (K, B) for K times of B bubbles)."""
        s = np.asarray(s, dtype=np.float64)
        base = np.asarray(j) * self.dt
        back = s < base
        om, beta, wd = self._coefficients(np.where(back, base - 0.5 * self.dt, base + 0.5 * self.dt), idx)
        cqq, cqv, cvq, cvv = free_motion(om, beta, wd, s - base)
        impulse = jet_impulse(base - 0.5 * self.dt, base + 0.5 * self.dt, self.g0[idx], self.tau[idx])
        v, w = v, w + np.where(back, 0.0, impulse)
        v, w = cqq * v + cqv * w, cvq * v + cvv * w
        return jet_force(s, self.g0[idx], self.tau[idx]) - 2.0 * beta * w - om * om * v


def surface_kernel(points: np.ndarray, bubble: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Normal acceleration per unit bubble volume acceleration (1/m²), (..., n, B), at points (n, 3)
    for bubbles at (..., B, 3) (leading axes: e.g. times).

    K = n_s·(x − x_b)/(2π|x − x_b|³): the bubble plus its negative image in the plane through x
    (= d/(2π(s² + d²)^{3/2}) on a flat surface at height d above the bubble); 0 below the bubble.
    """
    diff = points[:, None, :] - np.atleast_2d(bubble)[..., None, :, :]
    height = diff @ normal
    dist = np.linalg.norm(diff, axis=-1)
    return np.where(height > 0, height / (2.0 * math.pi * np.maximum(dist, 1e-12) ** 3), 0.0)


def solid_angle(triangles: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Signed solid angle (sr) of triangles (T, 3, 3) seen from a point (3,) (Van Oosterom & Strackee 1983).

    Positive when the triangle's normal (right-hand winding) points away from the point.
    """
    a, b, c = (triangles[:, i, :] - point for i in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
    num = np.einsum("ij,ij->i", a, np.cross(b, c))
    den = (la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", a, c) * lb
           + np.einsum("ij,ij->i", b, c) * la)
    return 2.0 * np.arctan2(num, den)
