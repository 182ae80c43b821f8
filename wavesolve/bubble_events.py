"""Bubble events for the ``bubbles`` shader: listed, read from a CSV file, or generated at random.

A bubble event (object frame of the water body, SI units) is its birth ``time`` (s), ``position``
(m, under the free surface), ``radius`` (m), optional ``lifetime`` (s; it bursts then, else it rings
until it has decayed) and optional ``amplitude`` ε (radius amplitude / radius of its ringing after
the entrainment forcing; default the shader's). A CSV file has the header
``time,x,y,z,radius[,lifetime][,amplitude]``.

Two stochastic models, seeded and reproducible (NumPy's PCG64 generator with ``seed``):

- ``dripping``: drops hit the surface at ``times`` (or every 1/``rate`` s from ``start`` to
  ``stop``); each entrains one bubble with probability ``probability``, born at the drop's time
  within ``spread`` (m, uniform on a disc) of the impact point ``position`` (a point on the free
  surface), at a depth uniform in ``depth = [min, max]``, with a radius log-uniform in
  ``radius = [min, max]``. Real drops entrain a bubble only in some ranges of drop size and speed
  (Pumphrey & Crum 1990); ``probability`` stands for that, and the log-uniform radius is a
  modelling choice.
- ``pouring``: bubbles are born as a Poisson process of mean ``rate`` (1/s) over [start, stop),
  within ``spread`` of ``position``, at a depth uniform in ``depth``, with radii drawn from the
  power law p(r) ∝ r^(−exponent) on ``radius = [min, max]``. The default exponent 3/2 is the
  slope Deane & Stokes (Nature 418, 2002) measured for bubbles smaller than the Hinze scale under
  breaking waves; using it for a poured stream is a modelling choice.

Every model draws ε log-uniform in ``amplitude = [min, max]`` (Czerski & Deane's random jet
parameter stands behind this spread of strengths; the range is a modelling choice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    model_validator,
)

from .csv_rows import read_csv_rows

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Range = Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)]


@dataclass(frozen=True)
class Bubble:
    """One bubble: birth time (s), position (3,) at birth (m, object frame), radius (m),
    lifetime (s, inf = until decayed), amplitude ε, and the scene key it came from."""

    time: float
    position: np.ndarray
    radius: float
    lifetime: float
    amplitude: float
    key: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BubbleConfig(_Strict):
    """One listed bubble."""

    time: NonNegativeFloat = Field(description="birth time (s)")
    position: Vec3 = Field(description="position at birth, object frame (m)")
    radius: PositiveFloat = Field(description="equilibrium radius (m)")
    lifetime: PositiveFloat | None = Field(default=None, description="time until it bursts (s)")
    amplitude: PositiveFloat | None = Field(default=None, description="radius amplitude ε (fraction of r)")


def _ordered(name: str, pair: list[float] | None) -> None:
    if pair is not None and pair[0] > pair[1]:
        raise ValueError(f"{name} = [min, max] needs min ≤ max (got {pair})")


class _Generator(_Strict):
    position: Vec3 = Field(description="point on the free surface where bubbles enter, object frame (m)")
    spread: NonNegativeFloat = Field(default=0.0, description="radius (m) of the disc bubbles are born in")
    depth: Range = Field(default=[0.004, 0.01], description="[min, max] depth under the surface (m)")
    radius: Range = Field(default=[0.001, 0.003], description="[min, max] bubble radius (m)")
    amplitude: Range = Field(default=[0.005, 0.02], description="[min, max] radius amplitude ε")
    lifetime: PositiveFloat | None = Field(default=None, description="time until each bubble bursts (s)")
    start: NonNegativeFloat = 0.0
    stop: PositiveFloat | None = Field(default=None, description="end (s); default the scene duration")
    seed: int = 0

    @model_validator(mode="after")
    def _ranges(self):
        for name in ("depth", "radius", "amplitude"):
            _ordered(name, getattr(self, name))
        if self.depth[0] <= self.radius[1]:
            raise ValueError(f"the smallest depth ({self.depth[0]} m) must exceed the largest radius "
                             f"({self.radius[1]} m): every bubble must be born under the surface")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be after start ({self.start})")
        return self


class DrippingConfig(_Generator):
    """Drops hitting the surface, each entraining (with a probability) one bubble."""

    model: Literal["dripping"]
    times: list[NonNegativeFloat] | None = Field(default=None, description="drop times (s)")
    rate: PositiveFloat | None = Field(default=None, description="drops per second (regular)")
    probability: float = Field(default=1.0, gt=0.0, le=1.0, description="chance that a drop entrains a bubble")

    @model_validator(mode="after")
    def _times_or_rate(self):
        if (self.times is None) == (self.rate is None):
            raise ValueError("give exactly one of times (list of s) or rate (drops per second)")
        return self


class PouringConfig(_Generator):
    """A Poisson stream of bubbles with power-law radii."""

    model: Literal["pouring"]
    rate: PositiveFloat = Field(description="mean bubbles per second")
    exponent: float = Field(default=1.5, description="p(r) ∝ r^(−exponent)")


GeneratorConfig = Annotated[DrippingConfig | PouringConfig, Field(discriminator="model")]

_CSV_REQUIRED = ("time", "x", "y", "z", "radius")
_CSV_OPTIONAL = ("lifetime", "amplitude")


def read_bubbles_csv(path: Path) -> list[dict[str, Any]]:
    """Bubble rows from a CSV with header time,x,y,z,radius[,lifetime][,amplitude] (ValueError if bad)."""
    rows = []
    for row in read_csv_rows(path, _CSV_REQUIRED, _CSV_OPTIONAL, "bubble"):
        item: dict[str, Any] = {"time": row["time"], "position": [row[n] for n in "xyz"], "radius": row["radius"]}
        item.update({n: row[n] for n in _CSV_OPTIONAL if n in row})
        rows.append(item)
    return rows


def tangent_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the unit ``normal`` and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(normal, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(normal, e1)


def _log_uniform(rng: np.random.Generator, pair: list[float], n: int) -> np.ndarray:
    lo, hi = math.log(pair[0]), math.log(pair[1])
    return np.exp(rng.uniform(lo, hi, n))


def power_law(rng: np.random.Generator, pair: list[float], exponent: float, n: int) -> np.ndarray:
    """n radii from p(r) ∝ r^(−exponent) on [min, max] (inverse transform of the CDF)."""
    lo, hi = pair
    u = rng.uniform(0.0, 1.0, n)
    if lo == hi:
        return np.full(n, lo)
    if abs(exponent - 1.0) < 1e-12:
        return lo * (hi / lo) ** u
    e = 1.0 - exponent
    return (lo ** e + u * (hi ** e - lo ** e)) ** (1.0 / e)


def generate_bubbles(config: DrippingConfig | PouringConfig, normal: np.ndarray, duration: float,
                     key: str) -> list[Bubble]:
    """The bubbles of a stochastic model (reproducible for a given seed); normal = free-surface normal."""
    rng = np.random.default_rng(config.seed)
    stop = config.stop if config.stop is not None else duration
    if isinstance(config, DrippingConfig):
        if config.times is not None:
            times = np.asarray(sorted(config.times), dtype=np.float64)
        else:
            times = config.start + np.arange(0.0, max(stop - config.start, 0.0), 1.0 / config.rate)
        times = times[rng.uniform(0.0, 1.0, len(times)) < config.probability]
        radii = _log_uniform(rng, config.radius, len(times))
    else:
        n = rng.poisson(config.rate * max(stop - config.start, 0.0))
        times = np.sort(rng.uniform(config.start, stop, n))
        radii = power_law(rng, config.radius, config.exponent, n)
    n = len(times)
    depth = rng.uniform(config.depth[0], config.depth[1], n)
    rho = config.spread * np.sqrt(rng.uniform(0.0, 1.0, n))
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    amp = _log_uniform(rng, config.amplitude, n)
    e1, e2 = tangent_basis(normal)
    pos = (np.asarray(config.position, float) + np.outer(rho * np.cos(phi), e1) + np.outer(rho * np.sin(phi), e2)
           - np.outer(depth, normal))
    life = config.lifetime if config.lifetime is not None else math.inf
    return [Bubble(float(times[i]), pos[i], float(radii[i]), life, float(amp[i]), f"{key} bubble {i}")
            for i in range(n)]
