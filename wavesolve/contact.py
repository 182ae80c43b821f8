"""Impacts: Hertz contact duration, half-sine force pulses, and impact lists for shaders.

Hertz contact (Johnson, *Contact Mechanics*, 1985; used for sound by Chadwick, Zheng & James,
SIGGRAPH 2012): two bodies meeting at normal relative speed v stay in contact for

    τ = 2.87 (m̂² / (R̂ Ê² v))^{1/5},
    1/Ê = Σ (1 − νᵢ²)/Eᵢ,   1/R̂ = Σ 1/Rᵢ (local radii of curvature; flat: 0),   1/m̂ = Σ 1/mᵢ

and, for the struck object, 1/m is 1/m + (r×n)·I⁻¹(r×n) (r from the centre of mass to the contact
point, n the impulse direction; the other body's rotation is left out). The force is modelled as the half-sine pulse

    f(t) = (π|J|/(2τ)) sin(π(t − t₀)/τ) on [t₀, t₀ + τ],   ∫f dt = |J|.

An impact in a shader table (object frame, SI units)::

    impacts = [ { time = 0.01, position = [0.0, 0.0, -0.05], impulse = [0.0, 0.0, 0.02],
                  speed = 1.0, other = "granite" } ]
    impacts_file = "hits.csv"     # header time,x,y,z,jx,jy,jz[,speed][,duration]

``duration`` (s) fixes τ directly; otherwise τ comes from Hertz with ``speed`` (m/s; default the
elastic-rebound estimate |J|/(2m̂)), the object's material and local radius ``radius`` (default
the radius of the sphere of the object's volume), and the other body: ``other`` (material,
default the object's own), ``other_radius`` (m, default flat) and ``other_mass`` (kg, default
immovable).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from .csv_rows import read_csv_rows
from .materials import Material

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]

#: impacts slower than this normal speed (m/s) are still rendered, but their Hertz duration is
#: computed at this speed (τ grows without bound as v → 0)
MIN_CONTACT_SPEED = 1e-3


def hertz_moduli(material: Material, other: Material, radius: float,
                 other_radius: float = math.inf) -> tuple[float, float]:
    """(E* Pa, R* m) of two bodies in Hertz contact: 1/E* = Σ (1 − νᵢ²)/Eᵢ, 1/R* = Σ 1/Rᵢ over the
    local radii of curvature (m; inf = flat)."""
    inv_e = sum((1 - m.poisson_ratio ** 2) / m.youngs_modulus for m in (material, other))
    inv_r = 1.0 / radius + (0.0 if math.isinf(other_radius) else 1.0 / other_radius)
    return 1.0 / inv_e, 1.0 / inv_r


def equivalent_radius(volume: float) -> float:
    """Radius (m) of the sphere of ``volume`` (m³): a body's default local radius for Hertz contact."""
    return (3.0 * volume / (4.0 * math.pi)) ** (1.0 / 3.0)


def hertz_duration(speed: float, mass: float, radius: float, material: Material,
                   other_material: Material | None = None, other_radius: float = math.inf,
                   other_mass: float = math.inf) -> float:
    """Hertz contact time τ (s) of a body (mass kg, local radius m, material) hitting another.

    ``other_material`` None means the same material; infinite radius = flat, infinite mass =
    immovable.
    """
    e_hat, r_hat = hertz_moduli(material, other_material or material, radius, other_radius)
    m_hat = 1.0 / (1.0 / mass + (0.0 if math.isinf(other_mass) else 1.0 / other_mass))
    v = max(abs(speed), MIN_CONTACT_SPEED)
    return 2.87 * (m_hat ** 2 / (r_hat * e_hat ** 2 * v)) ** 0.2


def half_sine(t, t0: float, tau: float, magnitude: float = 1.0):
    """Force f(t) = (π J/(2τ)) sin(π(t − t₀)/τ) on [t₀, t₀+τ], zero elsewhere (integral J)."""
    u = (np.asarray(t, dtype=np.float64) - t0) / tau
    return np.where((u >= 0) & (u <= 1), 0.5 * math.pi * magnitude / tau * np.sin(math.pi * np.clip(u, 0, 1)), 0.0)


def half_sine_integral(t, t0: float, tau: float, magnitude: float = 1.0):
    """∫_{−∞}^{t} of :func:`half_sine`: J(1 − cos(π(t − t₀)/τ))/2 inside, 0 before, J after."""
    u = np.clip((np.asarray(t, dtype=np.float64) - t0) / tau, 0.0, 1.0)
    return 0.5 * magnitude * (1.0 - np.cos(math.pi * u))


class ImpactConfig(BaseModel):
    """One contact impulse on the object (object frame)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    time: float = Field(ge=0.0, description="start of contact (s)")
    position: Vec3 = Field(description="contact point, object frame (m)")
    impulse: Vec3 = Field(description="impulse J on the object, object frame (N·s)")
    duration: PositiveFloat | None = Field(default=None, description="contact time τ (s); default Hertz")
    speed: PositiveFloat | None = Field(default=None, description="normal relative speed (m/s) for Hertz")
    other: str | dict[str, Any] | None = Field(default=None, description="material of the other body")
    other_radius: PositiveFloat | None = Field(default=None, description="other body's local radius (m)")
    other_mass: PositiveFloat | None = Field(default=None, description="other body's mass (kg)")


class ImpactListConfig(BaseModel):
    """Keys shared by the shaders that take impacts."""

    model_config = ConfigDict(extra="forbid", strict=True)

    impacts: list[ImpactConfig] = Field(default_factory=list)
    impacts_file: str | None = None
    rolling_file: str | None = Field(default=None, description="rolling/sliding contact forces (HDF5, "
                                     "wavesolve.rolling), e.g. from `wavesolve simulate-physics`")
    radius: PositiveFloat | None = Field(default=None, description="local radius of curvature of the object (m)")
    other: str | dict[str, Any] | None = None
    other_radius: PositiveFloat | None = None
    other_mass: PositiveFloat | None = None


_CSV_REQUIRED = ("time", "x", "y", "z", "jx", "jy", "jz")
_CSV_OPTIONAL = ("speed", "duration")


def read_impacts_csv(path: Path) -> list[dict[str, Any]]:
    """Impact rows from a CSV with header time,x,y,z,jx,jy,jz[,speed][,duration] (ValueError if bad)."""
    rows = []
    for row in read_csv_rows(path, _CSV_REQUIRED, _CSV_OPTIONAL, "impact"):
        item: dict[str, Any] = {"time": row["time"], "position": [row[n] for n in "xyz"],
                                "impulse": [row[n] for n in ("jx", "jy", "jz")]}
        item.update({n: row[n] for n in _CSV_OPTIONAL if n in row})
        rows.append(item)
    return rows


def write_impacts_csv(path: Path, rows: np.ndarray) -> Path:
    """Write impact rows (n, 9): time, x, y, z, jx, jy, jz, speed, duration (SI, object frame) as
    the CSV that :func:`read_impacts_csv` reads, atomically."""
    from .files import atomic_path

    text = ",".join(_CSV_REQUIRED + _CSV_OPTIONAL) + "\n" + "".join(
        ",".join(repr(float(v)) for v in row) + "\n" for row in np.asarray(rows, dtype=np.float64).reshape(-1, 9))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


class Impact:
    """A resolved impact: start t0 (s), duration τ (s), point and impulse (object frame)."""

    __slots__ = ("t0", "tau", "position", "impulse")

    def __init__(self, t0: float, tau: float, position: np.ndarray, impulse: np.ndarray) -> None:
        self.t0, self.tau = float(t0), float(tau)
        self.position, self.impulse = np.asarray(position, float), np.asarray(impulse, float)

    @property
    def end(self) -> float:
        return self.t0 + self.tau

    def force(self, t: float) -> np.ndarray:
        """Force vector (3,) at time t (N, object frame)."""
        return self.impulse * float(half_sine(t, self.t0, self.tau))

    def impulse_between(self, a: float, b: float) -> np.ndarray:
        """∫_a^b of the force (3,) (N·s)."""
        return self.impulse * float(half_sine_integral(b, self.t0, self.tau) - half_sine_integral(a, self.t0, self.tau))


class ForcingIndex:
    """Which of a list of forces (each with ``t0`` and ``end``, s, sorted by t0) act within a time
    span, by bisection: thousands of rolling pieces cost a shader no more per step than a few."""

    def __init__(self, forces: list) -> None:
        self.starts = np.array([f.t0 for f in forces], dtype=np.float64)
        self.ends = np.array([f.end for f in forces], dtype=np.float64)
        self._longest = float((self.ends - self.starts).max()) if len(forces) else 0.0

    def overlapping(self, a: float, b: float, closed: bool = False) -> np.ndarray:
        """Indices of the forces with t0 < b and end > a (t0 ≤ b and end ≥ a when ``closed``)."""
        lo = int(np.searchsorted(self.starts, a - self._longest, side="left"))
        hi = int(np.searchsorted(self.starts, b, side="right" if closed else "left"))
        idx = np.arange(lo, hi)
        ends = self.ends[lo:hi]
        return idx[ends >= a] if closed else idx[ends > a]


def effective_mass(mass: float, center: np.ndarray, inverse_inertia: np.ndarray, point: np.ndarray,
                   direction: np.ndarray) -> float:
    """Mass of a free rigid body as felt along ``direction`` at ``point``: 1/(1/m + (r×n)·I⁻¹(r×n))."""
    norm = float(np.linalg.norm(direction))
    if norm == 0.0:
        return mass
    rn = np.cross(np.asarray(point, float) - center, np.asarray(direction, float) / norm)
    return 1.0 / (1.0 / mass + float(rn @ inverse_inertia @ rn))


def resolve_impacts(config: ImpactListConfig, material: Material, mass: float, volume: float,
                    file: str, key: str, base_dir: Path, center: np.ndarray | None = None,
                    inverse_inertia: np.ndarray | None = None) -> list[Impact]:
    """Impacts of a shader table with their durations; raises SceneError on bad input.

    With ``center`` and ``inverse_inertia`` (object frame) the object's effective mass at each
    contact includes its rotation; without them it is the mass.
    """
    from .materials import parse_material

    rows: list[tuple[str, ImpactConfig]] = [(f"{key}.impacts[{i}]", imp) for i, imp in enumerate(config.impacts)]
    if config.impacts_file is not None:
        from .validation import read_named_file, validate_model

        raw = read_named_file(file, f"{key}.impacts_file", base_dir / config.impacts_file, "impact file",
                              read_impacts_csv, "write a CSV with header time,x,y,z,jx,jy,jz[,speed][,duration]")

        for i, item in enumerate(raw):
            rows.append((f"{key}.impacts_file row {i + 1}", validate_model(ImpactConfig, item, file, (key,))))
    radius = config.radius or equivalent_radius(volume)
    default_other = parse_material(config.other, file, f"{key}.other") if config.other is not None else material
    out = []
    for ikey, imp in rows:
        J = np.asarray(imp.impulse, dtype=np.float64)
        if imp.duration is not None:
            tau = imp.duration
        else:
            other = parse_material(imp.other, file, f"{ikey}.other") if imp.other is not None else default_other
            o_mass = imp.other_mass or config.other_mass or math.inf
            o_radius = imp.other_radius or config.other_radius or math.inf
            m_obj = mass if center is None or inverse_inertia is None else effective_mass(
                mass, center, inverse_inertia, np.asarray(imp.position, float), J)
            m_hat = 1.0 / (1.0 / m_obj + (0.0 if math.isinf(o_mass) else 1.0 / o_mass))
            speed = imp.speed if imp.speed is not None else float(np.linalg.norm(J)) / (2.0 * m_hat)
            tau = hertz_duration(speed, m_obj, radius, material, other, o_radius, o_mass)
        out.append(Impact(imp.time, tau, np.asarray(imp.position, float), J))
    return sorted(out, key=lambda i: i.t0)


def mass_properties(mesh, density: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(mass kg, volume m³, centre of mass (3,), inertia tensor about it (3, 3)) of a closed
    triangle mesh of uniform ``density`` (object frame). ValueError for a mesh with no volume."""
    import trimesh

    props = trimesh.triangles.mass_properties(mesh.triangles, density=density)
    volume = float(props["volume"])
    if not np.isfinite(volume) or volume <= 0:
        raise ValueError(f"the mesh encloses no positive volume ({volume:g} m³): it must be closed, with "
                         "outward normals")
    return float(props["mass"]), volume, np.asarray(props["center_mass"], float), np.asarray(props["inertia"], float)
