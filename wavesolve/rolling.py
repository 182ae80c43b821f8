"""Rolling and sliding contact: the force that surface roughness makes where two bodies stay in touch.

Model (the rigid-body limit of the rolling-noise model of Remington, JASA 81, 1987, and Thompson,
*Railway Noise and Vibration*, 2009; the profile-driven continuous contact of Phya, PHYSICS.md):
each surface X has a roughness profile r_X(s) (m) along the path its contact point travels over
it, s_X(t) = ∫ speed_X dt. Their sum, averaged over the Hertz contact patch, is a relative
displacement imposed across the contact:

    r(t) = r̄_a(s_a(t)) + r̄_b(s_b(t)),    r̄ = r filtered by H(κa) = 3 (sin z − z cos z)/z³, z = κa

(κ the profile's wavenumber, rad/m; a the patch radius; H is the mean of a wave e^{iκx} under the
parabolic line load (1 − x²/a²) that a Hertz pressure distribution puts on a line across the
patch). The two bodies, rigid, of reduced effective mass μ along the normal and pressed together
by the load N(t), meet through Hertz's contact (Johnson, *Contact Mechanics*, 1985) with
Hunt–Crossley damping (J. Appl. Mech. 42, 1975):

    μ ü = F_c − N,   F_c = K δ^{3/2} (1 + α δ̇) (≥ 0) while δ = δ₀ + r − u > 0, else 0,

δ₀ = (N/K)^{2/3} the static compression, u the bodies' separation from rest, K = (4/3)E*√R*
(1/E* = Σ(1 − ν²)/E, 1/R* = Σ 1/R, flat: 0). The result is the fluctuation F = F_c − N (N) of the
normal force on body a (b feels −F). Roughness small against δ₀ (tens of nanometres for a marble)
sees the linearised contact, stiffness k = dN/dδ = (3/2)K^{2/3}N^{1/3} and dashpot c = αN:
below the resonance ω_c = √(k/μ) F ≈ μ r̈ (the bodies follow the roughness), above it F ≈ k r + c ṙ,
in between |F/r| = μω² |k + iωc| / |k − μω² + iωc|. Rougher, the contact opens (F = −N: the light
body leaves the surface) and closes again in a small impact, stiffer the deeper: a rattle. α is set
by a damping ratio ζ (``CONTACT_DAMPING``) of the linearised resonance, c = 2ζ√(kμ) — a modelling
choice: a rigid-body contact has no damping of its own, and without any the resonance would ring
up without bound under broadband roughness. The patch radius is a = (3NR*/(4E*))^{1/3}. The mean
load is left out of F: its quasi-static response is inaudible, and the engine's samples of it
carry the solver's noise (N enters through δ₀ and the motion, averaged over 20 ms by
``physics.rolling_forces``). Each output sample is F's mean over its sampling interval (the change
of μu̇ across it over Δt), so the samples carry the contact's impulses exactly however short its
impacts: point samples of them would not (their mean drifted by 3 % of N).

A profile is Gaussian noise with a one-sided wavenumber spectrum ∝ κ^(−slope) between the
wavelengths ``SHORTEST`` and ``LONGEST``, holding the surface's RMS roughness over that band
(a modelling choice: real spectra are measured, e.g. EN 15610 for rails; a path shorter than
``LONGEST`` carries only its shorter wavelengths, at the same level), then patch-filtered and cut
above 0.45 of the sampling rate at the touch's top speed (no aliasing).

The result per body is a *rolling file* (HDF5, this module is the one place that knows it): per
touch the force F(t) at a fixed rate from ``start`` (s), and the contact point and the force's
direction on this body (object frame) at the engine's sample times. Shaders read it through
:func:`rolling_pieces`: one piece per engine interval, at that interval's point and direction,
with F's exact integral (F is linear between its samples).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numba import njit
from scipy.integrate import cumulative_trapezoid

from .contact import hertz_moduli
from .files import atomic_path
from .materials import Material

#: shortest and longest roughness wavelengths (m) of a generated profile
SHORTEST, LONGEST = 20e-6, 0.02
#: default spectral slope of a profile: one-sided wavenumber spectrum ∝ κ^(−SLOPE)
SLOPE = 2.0
#: default sampling rate (Hz) of the contact force
FORCE_RATE = 96_000.0
#: the contact point moves over a surface only faster than this (m/s): slower is the engine's
#: jitter at rest (under 0.5 mm/s on a resting box, wavesolve.physics.touches), read as rest
MIN_ROLLING_SPEED = 0.005
#: damping ratio ζ of the contact resonance (modelling choice, module docstring)
CONTACT_DAMPING = 0.1
#: contact integration steps (RK4) per force sample (even: the interval means need half samples)
SUBSTEPS = 8
#: rolling file format tag and version
FORMAT, VERSION = "wavesolve-rolling", 1


def hertz_constant(material: Material, other: Material, radius: float, other_radius: float = math.inf) -> float:
    """K (N/m^{3/2}) of Hertz's law N = K δ^{3/2}, for local radii of curvature (m; inf = flat)."""
    e_star, r_star = hertz_moduli(material, other, radius, other_radius)
    return 4.0 / 3.0 * e_star * math.sqrt(r_star)


def hertz_contact(force: np.ndarray | float, material: Material, other: Material, radius: float,
                  other_radius: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """(k N/m, a m): the Hertz contact's stiffness dN/dδ and patch radius at normal force N (N),
    for local radii of curvature (m; inf = flat) of the two surfaces."""
    n = np.maximum(np.asarray(force, dtype=np.float64), 0.0)
    e_star, r_star = hertz_moduli(material, other, radius, other_radius)
    big_k = 4.0 / 3.0 * e_star * math.sqrt(r_star)
    return 1.5 * big_k ** (2.0 / 3.0) * np.cbrt(n), np.cbrt(3.0 * n * r_star / (4.0 * e_star))


def patch_filter(z: np.ndarray) -> np.ndarray:
    """H(z) = 3 (sin z − z cos z)/z³, z = κa: the mean of e^{iκx} under the load (1 − x²/a²)."""
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 1e-3
    zs = np.where(small, 1.0, z)
    return np.where(small, 1.0 - z * z / 10.0, 3.0 * (np.sin(zs) - zs * np.cos(zs)) / zs ** 3)


def profile(rms: float, length: float, spacing: float, rng: np.random.Generator, patch_radius: float = 0.0,
            cutoff: float = math.inf, slope: float = SLOPE) -> tuple[np.ndarray, np.ndarray]:
    """A roughness profile r (m) and its slope dr/ds at s = 0, spacing, …, ≥ length (m), periodic,
    before it is patch-filtered (radius m) and cut above ``cutoff`` rad/m. Its one-sided spectrum
    S(κ) ∝ κ^(−slope) on [2π/LONGEST, 2π/SHORTEST] holds rms² in all; each frequency bin gets the
    variance S puts in its width, so a path shorter than LONGEST carries only the shorter
    wavelengths, at the level a long one has there (its RMS is then less than ``rms``)."""
    n = int(math.ceil(length / spacing)) + 2
    n += n % 2
    kappa = 2.0 * math.pi * np.fft.rfftfreq(n, spacing)
    lo_band, hi_band = 2.0 * math.pi / LONGEST, 2.0 * math.pi / SHORTEST
    if rms == 0.0:
        return np.zeros(n), np.zeros(n)
    step = kappa[1]

    def cumulative(k: np.ndarray) -> np.ndarray:      # ∫ κ^(−slope) dκ from lo_band to k, k in the band
        k = np.clip(k, lo_band, hi_band)
        if abs(slope - 1.0) < 1e-12:
            return np.log(k / lo_band)
        return (lo_band ** (1.0 - slope) - k ** (1.0 - slope)) / (slope - 1.0)

    variance = rms ** 2 * (cumulative(kappa + step / 2) - cumulative(kappa - step / 2)) / cumulative(np.array(hi_band))
    variance[0] = 0.0
    amp = n * np.sqrt(0.5 * variance)
    coeff = amp * np.exp(2j * math.pi * rng.random(len(kappa)))
    coeff[0] = 0.0
    coeff *= patch_filter(kappa * patch_radius) * (kappa <= cutoff)
    return np.fft.irfft(coeff, n), np.fft.irfft(1j * kappa * coeff, n)


@dataclass
class ContactForce:
    """One touch's force on a body: F (n,) N at ``rate`` Hz from ``start`` s, along ``direction``
    (m, 3; unit, object frame, on this body) at ``position`` (m, 3; m) at ``times`` (m,) s."""

    start: float
    rate: float
    force: np.ndarray
    times: np.ndarray
    position: np.ndarray
    direction: np.ndarray

    @property
    def end(self) -> float:
        return self.start + (len(self.force) - 1) / self.rate

    @cached_property
    def _cumulative(self) -> np.ndarray:
        """∫ F dt (N·s) from ``start`` to each sample (n,)."""
        return cumulative_trapezoid(self.force, dx=1.0 / self.rate, initial=0.0)

    def integral(self, t: np.ndarray | float) -> np.ndarray:
        """∫ F dt (N·s) from ``start`` to t (clamped to the touch), exact for F linear between samples."""
        f, cum = self.force, self._cumulative
        x = np.clip((np.asarray(t, dtype=np.float64) - self.start) * self.rate, 0.0, len(f) - 1)
        j = np.minimum(np.floor(x).astype(np.int64), len(f) - 2)
        th = x - j
        return cum[j] + (f[j] * th + 0.5 * (f[j + 1] - f[j]) * th * th) / self.rate

    def at(self, t: np.ndarray | float) -> np.ndarray:
        """F (N) at t, linear between samples, 0 outside the touch (the two samples around t are
        found by index: a shader asks at every step)."""
        f = self.force
        x = (np.asarray(t, dtype=np.float64) - self.start) * self.rate
        j = np.clip(np.floor(x).astype(np.int64), 0, len(f) - 2)
        value = f[j] + (x - j) * (f[j + 1] - f[j])
        return np.where((x >= 0.0) & (x <= len(f) - 1), value, 0.0)


class RollingPiece:
    """An engine interval [t0, end) of a :class:`ContactForce` ([t0, end] for a touch's last), at
    its mean point and direction (object frame): ``force(t)`` (3,) N and ``impulse_between(a, b)``
    (3,) N·s, as an impact's. Half open, so that where two pieces meet the force counts once."""

    __slots__ = ("t0", "end", "position", "direction", "_parent", "_last")

    def __init__(self, parent: ContactForce, t0: float, end: float, position: np.ndarray,
                 direction: np.ndarray, last: bool = True) -> None:
        self._parent, self.t0, self.end, self._last = parent, float(t0), float(end), last
        self.position, self.direction = position, direction

    def force(self, t: float) -> np.ndarray:
        inside = self.t0 <= t < self.end or (self._last and t == self.end)
        return self.direction * float(self._parent.at(t)) if inside else np.zeros(3)

    def impulse_between(self, a: float, b: float) -> np.ndarray:
        a, b = max(a, self.t0), min(b, self.end)
        if b <= a:
            return np.zeros(3)
        g = self._parent.integral(np.array([a, b]))
        return self.direction * float(g[1] - g[0])

    @property
    def impulse(self) -> np.ndarray:
        return self.impulse_between(self.t0, self.end)


def rolling_pieces(forces: list[ContactForce]) -> list[RollingPiece]:
    """The touches cut at their engine sample times, sorted by start; the first and last pieces
    reach the force's start and end where the sample times do not."""
    out = []
    for cf in forces:
        t = np.clip(cf.times, cf.start, cf.end)
        t[0], t[-1] = cf.start, cf.end
        mid_p = 0.5 * (cf.position[1:] + cf.position[:-1])
        mid_d = cf.direction[1:] + cf.direction[:-1]
        mid_d /= np.maximum(np.linalg.norm(mid_d, axis=1, keepdims=True), 1e-300)
        cut = [i for i in range(len(t) - 1) if t[i + 1] > t[i]]
        out += [RollingPiece(cf, t[i], t[i + 1], mid_p[i], mid_d[i], i == cut[-1]) for i in cut] if cut else []
    return sorted(out, key=lambda p: p.t0)


@njit(cache=True, inline="always")
def _contact(u, v, r, rdot, load, big_k, alpha):     # pragma: no cover - compiled
    """F_c − N (N) at separation u (m) and its rate v (m/s) (module docstring)."""
    d = (load / big_k) ** (2.0 / 3.0) + r - u
    fc = 0.0
    if d > 0.0:
        fc = max(0.0, big_k * d ** 1.5 * (1.0 + alpha * (rdot - v)))
    return fc - load


@njit(cache=True)
def _contact_means(r, rdot, load, dt, mass, big_k, alpha, decimate):     # pragma: no cover - compiled
    """F_c − N averaged over each output interval [tⱼ − D/2, tⱼ + D/2] (clipped to the run), tⱼ
    every ``decimate`` (even) input samples, D = decimate·dt: μ times the change of u̇ across it
    over its length. Classic RK4 on (u, u̇), one step per input interval, r, ṙ and N linear
    across it; starting on the roughness (u = r, u̇ = ṙ)."""
    n = len(r)
    speed = np.empty(n)               # u̇ at each input sample
    u, v = r[0], rdot[0]
    speed[0] = v
    for i in range(n - 1):
        rm, rdm, nm = 0.5 * (r[i] + r[i + 1]), 0.5 * (rdot[i] + rdot[i + 1]), 0.5 * (load[i] + load[i + 1])
        a1 = _contact(u, v, r[i], rdot[i], load[i], big_k, alpha) / mass
        u2, v2 = u + 0.5 * dt * v, v + 0.5 * dt * a1
        a2 = _contact(u2, v2, rm, rdm, nm, big_k, alpha) / mass
        u3, v3 = u + 0.5 * dt * v2, v + 0.5 * dt * a2
        a3 = _contact(u3, v3, rm, rdm, nm, big_k, alpha) / mass
        u4, v4 = u + dt * v3, v + dt * a3
        a4 = _contact(u4, v4, r[i + 1], rdot[i + 1], load[i + 1], big_k, alpha) / mass
        u += dt / 6.0 * (v + 2.0 * v2 + 2.0 * v3 + v4)
        v += dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        speed[i + 1] = v
    m = (n - 1) // decimate + 1
    out = np.zeros(m)
    for j in range(m):
        lo, hi = max(0, j * decimate - decimate // 2), min(n - 1, j * decimate + decimate // 2)
        if hi > lo:
            out[j] = mass * (speed[hi] - speed[lo]) / ((hi - lo) * dt)
    return out


def contact_force(r: np.ndarray, rdot: np.ndarray, rate: float, mass: float, big_k: float,
                  load: np.ndarray | float, damping: float = CONTACT_DAMPING, decimate: int = SUBSTEPS
                  ) -> np.ndarray:
    """F = F_c − N of the contact (module docstring) every ``decimate`` (even) samples of its
    inputs, each value F's mean over its interval: the roughness r (n,) m and its rate ṙ (n,) m/s
    sampled at ``rate`` Hz (the integrator's step), the load N (n,) or constant (N > 0), reduced
    mass μ (kg), Hertz constant K (N/m^{3/2}); α from c = 2ζ√(kμ) at the mean load."""
    r = np.asarray(r, dtype=np.float64)
    load = np.broadcast_to(np.asarray(load, dtype=np.float64), r.shape).copy()
    mean = float(np.mean(load))
    k = 1.5 * big_k ** (2.0 / 3.0) * mean ** (1.0 / 3.0)
    alpha = 2.0 * damping * math.sqrt(k * mass) / mean
    return _contact_means(r, np.asarray(rdot, dtype=np.float64), load, 1.0 / rate, float(mass), float(big_k),
                          alpha, int(decimate))


def roughness_force(times: np.ndarray, normal_force: np.ndarray, speed_a: np.ndarray, speed_b: np.ndarray,
                    mass: float, big_k: float, patch_radius: float, roughness_a: float, roughness_b: float,
                    rng: np.random.Generator, rate: float = FORCE_RATE,
                    slope: float = SLOPE) -> tuple[float, np.ndarray]:
    """(start s, F (n,) N at ``rate``) of one touch (module docstring) from its engine samples:
    times (m,) s, normal force N (m,) N (> 0), the contact point's speeds over a and b (m,) m/s;
    reduced mass μ (kg), Hertz constant K (N/m^{3/2}) and patch radius a (m), and the surfaces'
    RMS roughness (m). Speeds under ``MIN_ROLLING_SPEED`` count as rest. The contact is integrated
    ``SUBSTEPS`` times finer, with the roughness read there (not interpolated: a linear
    interpolation between output samples took 5 % off a 12 kHz component)."""
    fine = rate * SUBSTEPS
    steps = int(math.floor((times[-1] - times[0]) * rate)) * SUBSTEPS
    t = times[0] + np.arange(steps + 1) / fine
    r, rdot = np.zeros(len(t)), np.zeros(len(t))
    for speed, rms in ((speed_a, roughness_a), (speed_b, roughness_b)):
        v = np.interp(t, times, np.where(np.abs(speed) < MIN_ROLLING_SPEED, 0.0, np.abs(speed)))
        s = cumulative_trapezoid(v, dx=1.0 / fine, initial=0.0)
        top = float(v.max())
        if rms <= 0.0 or top <= 0.0 or s[-1] <= 0.0:
            continue
        cutoff = 2.0 * math.pi * 0.45 * rate / top
        spacing = min(SHORTEST / 4.0, math.pi / cutoff / 2.0)
        prof, slope_s = profile(rms, float(s[-1]), spacing, rng, patch_radius, cutoff, slope)
        grid = spacing * np.arange(len(prof))
        r += np.interp(s, grid, prof)
        rdot += np.interp(s, grid, slope_s) * v
    return float(t[0]), contact_force(r, rdot, fine, mass, big_k, np.interp(t, times, normal_force), decimate=SUBSTEPS)


def save_rolling(path: str | Path, forces: list[ContactForce]) -> Path:
    """Write a body's touches as a rolling file (HDF5), atomically."""
    import h5py

    with atomic_path(Path(path)) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"], f.attrs["version"] = FORMAT, VERSION
            for i, cf in enumerate(forces):
                g = f.create_group(f"touches/{i:05d}")
                g.attrs["start"], g.attrs["rate"] = cf.start, cf.rate
                g["force"] = np.asarray(cf.force, dtype=np.float64)
                g["times"] = np.asarray(cf.times, dtype=np.float64)
                g["position"] = np.asarray(cf.position, dtype=np.float64)
                g["direction"] = np.asarray(cf.direction, dtype=np.float64)
    return Path(path)


def load_rolling(path: str | Path) -> list[ContactForce]:
    """Read a rolling file; ValueError naming what is wrong."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"not a rolling file (attribute format is not '{FORMAT}')")
        for name in sorted(f.get("touches", {})):
            g = f["touches"][name]
            cf = ContactForce(float(g.attrs["start"]), float(g.attrs["rate"]), g["force"][()], g["times"][()],
                              g["position"][()], g["direction"][()])
            m = len(cf.times)
            if (cf.rate <= 0 or len(cf.force) < 2 or cf.position.shape != (m, 3) or cf.direction.shape != (m, 3)
                    or m < 2 or np.any(np.diff(cf.times) <= 0) or not np.all(np.isfinite(cf.force))):
                raise ValueError(f"touch {name}: needs rate > 0, ≥ 2 force samples, ≥ 2 increasing times "
                                 "and position, direction of shape (times, 3)")
            out.append(cf)
    return out


def resolve_rolling(config, file: str, key: str, base_dir: Path) -> list[RollingPiece]:
    """The rolling pieces of a shader table's ``rolling_file`` (none without one); SceneError if
    the file is missing or malformed."""
    if getattr(config, "rolling_file", None) is None:
        return []
    from .validation import read_named_file

    forces = read_named_file(file, f"{key}.rolling_file", base_dir / config.rolling_file, "rolling file",
                             load_rolling, "write it with wavesolve.rolling.save_rolling or `wavesolve simulate-physics`",
                             errors=(ValueError, OSError, KeyError))
    return rolling_pieces(forces)
