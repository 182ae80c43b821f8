"""Rolling and sliding contact: the force that surface roughness makes where two bodies stay in touch.

Model (the rigid-body limit of the rolling-noise model of Remington, JASA 81, 1987, and Thompson,
*Railway Noise and Vibration*, 2009; the profile-driven continuous contact of Phya, PHYSICS.md):
each surface X has a roughness profile r_X(s) (m) along the path its contact point travels over
it, s_X(t) = ∫ speed_X dt. Their sum, averaged over the Hertz contact patch, is a relative
displacement imposed across the contact:

    r(t) = r̄_a(s_a(t)) + r̄_b(s_b(t)),    r̄ = r filtered by H(κa) = 3 (sin z − z cos z)/z³, z = κa

(κ the profile's wavenumber, rad/m; a the patch radius; H is the mean of a wave e^{iκx} under the
parabolic line load (1 − x²/a²) that a Hertz pressure distribution puts on a line across the
patch). The two bodies, rigid, of reduced effective mass μ along the normal, meet through the
linearised Hertz spring k = dN/dδ and a dashpot c = 2ζ√(kμ):

    μ ü = F,    F = k (r − u) + c (ṙ − u̇)

F (N) is the fluctuation of the normal force on body a (b feels −F): below the contact resonance
ω_c = √(k/μ) F ≈ μ r̈ (the bodies follow the roughness), above it F ≈ k r + c ṙ; in between,
|F/r| = μω² |k + iωc| / |k − μω² + iωc|. The damping ratio ζ (``CONTACT_DAMPING``) is a modelling
choice: a rigid-body contact has no damping of its own, and without one the resonance would ring
up without bound under broadband roughness. The mean load N is left out:
its quasi-static response is inaudible, and the engine's samples of it carry the solver's noise.
Where F < −N the contact would open, which the linear model cannot follow: F is clipped at −N.
Hertz (Johnson, *Contact Mechanics*, 1985): 1/E* = Σ(1 − ν²)/E, 1/R* = Σ 1/R (flat: 0),
δ = (N/K)^{2/3} with K = (4/3)E*√R*, so k = (3/2)K^{2/3}N^{1/3} and a = (3NR*/(4E*))^{1/3}.

A profile is Gaussian noise with a one-sided wavenumber spectrum ∝ κ^(−slope) between the
wavelengths ``SHORTEST`` and ``LONGEST``, scaled to the surface's RMS roughness over that band
(a modelling choice: real spectra are measured, e.g. EN 15610 for rails), then patch-filtered
and cut above 0.45 of the sampling rate at the touch's top speed (no aliasing).

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
from scipy import signal

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
#: rolling file format tag and version
FORMAT, VERSION = "wavesolve-rolling", 1


def hertz_contact(force: np.ndarray | float, material: Material, other: Material, radius: float,
                  other_radius: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """(k N/m, a m): the Hertz contact's stiffness dN/dδ and patch radius at normal force N (N),
    for local radii of curvature (m; inf = flat) of the two surfaces."""
    n = np.maximum(np.asarray(force, dtype=np.float64), 0.0)
    e_star = 1.0 / sum((1 - m.poisson_ratio ** 2) / m.youngs_modulus for m in (material, other))
    r_star = 1.0 / (1.0 / radius + (0.0 if math.isinf(other_radius) else 1.0 / other_radius))
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
    """A roughness profile r (m) and its slope dr/ds at s = 0, spacing, …, ≥ length (m), periodic:
    RMS ``rms`` over the band [SHORTEST, LONGEST] before it is patch-filtered (radius m) and cut
    above ``cutoff`` rad/m."""
    n = int(math.ceil(length / spacing)) + 2
    n += n % 2
    kappa = 2.0 * math.pi * np.fft.rfftfreq(n, spacing)
    band = (kappa >= 2.0 * math.pi / LONGEST) & (kappa <= 2.0 * math.pi / SHORTEST)
    amp = np.where(band, np.maximum(kappa, 1e-30) ** (-0.5 * slope), 0.0)
    if not band.any() or rms == 0.0:
        return np.zeros(n), np.zeros(n)
    amp *= rms / math.sqrt(2.0 * float(np.sum(amp[1:] ** 2)) / n ** 2)
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
        f = self.force
        return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]))]) / self.rate

    def integral(self, t: np.ndarray | float) -> np.ndarray:
        """∫ F dt (N·s) from ``start`` to t (clamped to the touch), exact for F linear between samples."""
        f, cum = self.force, self._cumulative
        x = np.clip((np.asarray(t, dtype=np.float64) - self.start) * self.rate, 0.0, len(f) - 1)
        j = np.minimum(np.floor(x).astype(np.int64), len(f) - 2)
        th = x - j
        return cum[j] + (f[j] * th + 0.5 * (f[j + 1] - f[j]) * th * th) / self.rate

    def at(self, t: np.ndarray | float) -> np.ndarray:
        """F (N) at t, linear between samples, 0 outside the touch."""
        x = (np.asarray(t, dtype=np.float64) - self.start) * self.rate
        return np.interp(x, np.arange(len(self.force)), self.force, left=0.0, right=0.0)


class RollingPiece:
    """An engine interval [t0, end] of a :class:`ContactForce`, at its mean point and direction
    (object frame): ``force(t)`` (3,) N and ``impulse_between(a, b)`` (3,) N·s, as an impact's."""

    __slots__ = ("t0", "end", "position", "direction", "_parent")

    def __init__(self, parent: ContactForce, t0: float, end: float, position: np.ndarray,
                 direction: np.ndarray) -> None:
        self._parent, self.t0, self.end = parent, float(t0), float(end)
        self.position, self.direction = position, direction

    def force(self, t: float) -> np.ndarray:
        return self.direction * float(self._parent.at(t)) if self.t0 <= t <= self.end else np.zeros(3)

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
    """The touches cut at their engine sample times, sorted by start."""
    out = []
    for cf in forces:
        t = np.clip(cf.times, cf.start, cf.end)
        mid_p = 0.5 * (cf.position[1:] + cf.position[:-1])
        mid_d = cf.direction[1:] + cf.direction[:-1]
        mid_d /= np.maximum(np.linalg.norm(mid_d, axis=1, keepdims=True), 1e-300)
        for i in range(len(t) - 1):
            if t[i + 1] > t[i]:
                out.append(RollingPiece(cf, t[i], t[i + 1], mid_p[i], mid_d[i]))
    return sorted(out, key=lambda p: p.t0)


def contact_force(r: np.ndarray, rdot: np.ndarray, rate: float, mass: float, stiffness: float,
                  damping: float = CONTACT_DAMPING) -> np.ndarray:
    """F (n,) N of the contact (module docstring) driven by the roughness r (n,) m and its rate
    ṙ (n,) m/s sampled at ``rate`` Hz: μ ü = F = k (r − u) + c (ṙ − u̇), c = 2ζ√(kμ), starting
    with the bodies riding the roughness (u = r, u̇ = ṙ: F = 0, no step where the touch begins);
    exact for inputs linear between samples (scipy.signal.lsim)."""
    c = 2.0 * damping * math.sqrt(stiffness * mass)
    system = signal.StateSpace([[0.0, 1.0], [-stiffness / mass, -c / mass]], [[0.0, 0.0], [stiffness / mass, c / mass]],
                               [[-stiffness, -c]], [[stiffness, c]])
    t = np.arange(len(r)) / rate
    _, f, _ = signal.lsim(system, np.stack([r, rdot], axis=1), t, X0=[r[0], rdot[0]])
    return np.atleast_1d(f)


def roughness_force(times: np.ndarray, normal_force: np.ndarray, speed_a: np.ndarray, speed_b: np.ndarray,
                    mass: float, stiffness: float, patch_radius: float, roughness_a: float, roughness_b: float,
                    rng: np.random.Generator, rate: float = FORCE_RATE,
                    slope: float = SLOPE) -> tuple[float, np.ndarray]:
    """(start s, F (n,) N at ``rate``) of one touch (module docstring) from its engine samples:
    times (m,) s, normal force N (m,) N, the contact point's speeds over a and b (m,) m/s; reduced
    mass μ (kg), stiffness k (N/m) and patch radius a (m), and the surfaces' RMS roughness (m).
    Speeds under ``MIN_ROLLING_SPEED`` count as rest."""
    t = times[0] + np.arange(int(math.floor((times[-1] - times[0]) * rate)) + 1) / rate
    r, rdot = np.zeros(len(t)), np.zeros(len(t))
    for speed, rms in ((speed_a, roughness_a), (speed_b, roughness_b)):
        v = np.interp(t, times, np.where(np.abs(speed) < MIN_ROLLING_SPEED, 0.0, np.abs(speed)))
        s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]))]) / rate
        top = float(v.max())
        if rms <= 0.0 or top <= 0.0 or s[-1] <= 0.0:
            continue
        cutoff = 2.0 * math.pi * 0.45 * rate / top
        spacing = min(SHORTEST / 4.0, math.pi / cutoff / 2.0)
        prof, slope_s = profile(rms, float(s[-1]), spacing, rng, patch_radius, cutoff, slope)
        grid = spacing * np.arange(len(prof))
        r += np.interp(s, grid, prof)
        rdot += np.interp(s, grid, slope_s) * v
    f = contact_force(r, rdot, rate, mass, stiffness)
    return float(t[0]), np.maximum(f, -np.interp(t, times, normal_force))


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
