"""Elastic materials for modal analysis and contact: a built-in table and inline scene materials.

Damping is Rayleigh damping with the convention **C = αM + βK** (α in 1/s multiplies the mass
matrix, β in s multiplies the stiffness matrix), so a mode of angular frequency ω has the damping
ratio ξ = ½(α/ω + βω). Some codes swap the names of α and β; every value here uses this one.

Each row names its source. "modal-sound tables" are the values collected in PHYSICS.md from the
modal-sound literature; "handbook" marks standard engineering-handbook elastic constants (typical
values of ranges); "estimate" marks a value chosen by analogy where no measured value was found —
treat those as a starting point and tune by ear.

In a scene file a material is a name from the table or an inline table::

    material = "steel"
    material = { density = 7850.0, youngs_modulus = 2.0e11, poisson_ratio = 0.29,
                 rayleigh_alpha = 5.0, rayleigh_beta = 3e-8 }
"""
from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class Material(BaseModel):
    """An isotropic linear-elastic material with Rayleigh damping C = αM + βK (SI units)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = "inline"
    density: PositiveFloat = Field(description="ρ (kg/m³)")
    youngs_modulus: PositiveFloat = Field(description="E (Pa)")
    poisson_ratio: float = Field(gt=-1.0, lt=0.5, description="ν (dimensionless)")
    rayleigh_alpha: float = Field(default=0.0, ge=0.0, description="α (1/s), multiplies M in C = αM + βK")
    rayleigh_beta: float = Field(default=0.0, ge=0.0, description="β (s), multiplies K in C = αM + βK")
    source: str = Field(default="given in the scene", description="where the values come from")

    def damping_ratio(self, omega):
        """ξ(ω) = ½(α/ω + βω) for angular frequency ω (rad/s); scalar or array."""
        return 0.5 * (self.rayleigh_alpha / omega + self.rayleigh_beta * omega)

    @property
    def shear_modulus(self) -> float:
        return self.youngs_modulus / (2.0 * (1.0 + self.poisson_ratio))

    @property
    def shear_wave_speed(self) -> float:
        """c_s = √(G/ρ) (m/s)."""
        return math.sqrt(self.shear_modulus / self.density)

    @property
    def lame(self) -> tuple[float, float]:
        """Lamé parameters (λ, μ) in Pa."""
        E, nu = self.youngs_modulus, self.poisson_ratio
        return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


_TABLES = "modal-sound tables (PHYSICS.md)"

#: name → (ρ kg/m³, E Pa, ν, α 1/s, β s, source)
_ROWS: dict[str, tuple[float, float, float, float, float, str]] = {
    "steel": (7850.0, 2.0e11, 0.29, 5.0, 3e-8, _TABLES),
    "iron": (8000.0, 2.1e11, 0.28, 5.0, 1e-7, _TABLES),
    "tin": (7265.0, 5.0e10, 0.325, 2.0, 3e-8, _TABLES),
    "glass": (2600.0, 6.2e10, 0.20, 1.0, 1e-7, _TABLES),
    "ceramic": (2700.0, 7.2e10, 0.19, 6.0, 1e-7, _TABLES),
    "wood": (750.0, 1.1e10, 0.25, 60.0, 2e-6, _TABLES),
    "abs": (1070.0, 1.4e9, 0.35, 30.0, 1e-6, _TABLES),
    "polycarbonate": (1190.0, 2.4e9, 0.37, 0.5, 4e-7, _TABLES),
    "polystyrene": (1050.0, 3.5e9, 0.34, 30.0, 8e-7, _TABLES),
    "mdf": (615.0, 4.0e9, 0.32, 35.0, 5e-6, _TABLES),
    "aluminium": (2700.0, 6.9e10, 0.33, 5.0, 3e-8,
                  "handbook elastic constants; damping an estimate (steel's α, β: no modal values found)"),
    "brass": (8500.0, 1.0e11, 0.34, 5.0, 3e-8,
              "handbook elastic constants (typical of 8400–8730 kg/m³, 97–110 GPa); damping an estimate "
              "(steel's α, β)"),
    "granite": (2700.0, 5.0e10, 0.25, 10.0, 3e-7,
                "handbook elastic constants (typical of 2600–2800 kg/m³, 40–70 GPa); damping an estimate"),
    "oak": (750.0, 1.1e10, 0.25, 60.0, 2e-6,
            "handbook density and along-grain modulus, treated as isotropic; damping from the wood row "
            "of the modal-sound tables"),
    "pine": (500.0, 9.0e9, 0.30, 60.0, 2e-6,
             "handbook density and along-grain modulus, treated as isotropic (an estimate); damping from "
             "the wood row of the modal-sound tables"),
}

#: other spellings accepted for table names
ALIASES = {"abs plastic": "abs", "aluminum": "aluminium", "stainless steel": "steel", "porcelain": "ceramic"}

MATERIALS: dict[str, Material] = {
    name: Material(name=name, density=rho, youngs_modulus=E, poisson_ratio=nu, rayleigh_alpha=a,
                   rayleigh_beta=b, source=src)
    for name, (rho, E, nu, a, b, src) in _ROWS.items()
}


def get_material(name: str) -> Material:
    """The built-in material called ``name`` (case-insensitive; aliases such as 'aluminum').

    Raises KeyError with the known names.
    """
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in MATERIALS:
        raise KeyError(f"unknown material '{name}'; known: {', '.join(sorted(MATERIALS))}")
    return MATERIALS[key]


def parse_material(value: object, file: str, key: str) -> Material:
    """A material from a scene value: a table name or an inline table. Raises SceneError."""
    from .errors import SceneError
    from .validation import did_you_mean, validate_model

    if isinstance(value, str):
        try:
            return get_material(value)
        except KeyError:
            guess = did_you_mean(value.lower(), list(MATERIALS) + list(ALIASES))
            fix = f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(sorted(MATERIALS))
            raise SceneError(file, key, f"unknown material '{value}'", fix + " (or give an inline table)") from None
    if isinstance(value, dict):
        return validate_model(Material, value, file, (key,))
    raise SceneError(file, key, f"expected a material name or table, got {value!r}",
                     'write material = "steel" or material = { density = …, youngs_modulus = …, poisson_ratio = … }')
