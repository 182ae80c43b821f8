"""Materials, the modal ODE stepping and Hertz contact times.

References: the closed-form damped impulse response h(t) = e^{−ξωt} sin(ω_d t)/ω_d (any ODE
text); the impulse-invariant recursion and the material table of PHYSICS.md; Hertz contact
(Johnson 1985) with PHYSICS.md's worked example (1 cm steel ball at 1 m/s on steel: ≈ 71 µs).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from wavesolve.contact import half_sine, half_sine_integral, hertz_duration
from wavesolve.errors import SceneError
from wavesolve.materials import MATERIALS, get_material, parse_material
from wavesolve.modal import ModalOscillators, damped_impulse_response, impulse_invariant_response


def test_table_has_the_issue_materials_with_sources():
    for name in ("steel", "aluminium", "brass", "glass", "ceramic", "granite", "oak", "pine", "abs",
                 "polycarbonate"):
        m = MATERIALS[name]
        assert m.density > 0 and m.youngs_modulus > 0 and 0 < m.poisson_ratio < 0.5 and m.source
    assert get_material("ABS plastic") is MATERIALS["abs"] and get_material("Aluminum") is MATERIALS["aluminium"]
    steel = MATERIALS["steel"]  # PHYSICS.md row, C = αM + βK
    assert (steel.density, steel.youngs_modulus, steel.poisson_ratio, steel.rayleigh_alpha,
            steel.rayleigh_beta) == (7850.0, 2.0e11, 0.29, 5.0, 3e-8)
    w = 2 * math.pi * 1000.0
    assert steel.damping_ratio(w) == pytest.approx(0.5 * (5.0 / w + 3e-8 * w), rel=1e-15)


def test_inline_material_is_validated():
    m = parse_material({"density": 1000.0, "youngs_modulus": 1e9, "poisson_ratio": 0.3, "rayleigh_alpha": 2.0},
                       "s.toml", "objects[0].shaders[0].material")
    assert m.rayleigh_beta == 0.0 and m.name == "inline"
    with pytest.raises(SceneError, match=r"poisson_ratio"):
        parse_material({"density": 1000.0, "youngs_modulus": 1e9, "poisson_ratio": 0.6}, "s.toml", "material")
    with pytest.raises(SceneError, match="did you mean 'steel'"):
        parse_material("steal", "s.toml", "material")


@pytest.mark.parametrize("f, xi", [(500.0, 0.01), (5000.0, 0.001), (18000.0, 0.05)])
def test_recursion_matches_closed_form_impulse_response(f, xi):
    """Exact at the samples: error ≤ 1e-6 of the peak (the issue's bound; rounding gives ~1e-13)."""
    dt = 1.0 / 44100.0
    omega = 2 * math.pi * f
    n = 4000
    g = np.zeros((n, 1))
    g[0] = 0.3
    ref = 0.3 * damped_impulse_response(omega, xi, np.arange(n) * dt)
    q = impulse_invariant_response(omega, xi, dt, g)
    assert np.max(np.abs(q - ref)) < 1e-6 * np.max(np.abs(ref))
    bank = ModalOscillators(omega, xi, dt)  # the two-state form: same samples
    states = []
    for k in range(n):
        states.append(bank.q.copy())
        bank.advance(g[k])
    assert np.max(np.abs(np.array(states) - ref)) < 1e-6 * np.max(np.abs(ref))
    # and between samples, with exact q̇ (derivative of the closed form)
    bank.restart()
    bank.advance(g[0])
    s = 0.37 * dt
    qs, vs = bank.at(s)
    t = dt + s
    wd = omega * math.sqrt(1 - xi * xi)
    e = math.exp(-xi * omega * t)
    assert qs[0] == pytest.approx(0.3 * e * math.sin(wd * t) / wd, rel=1e-10)
    assert vs[0] == pytest.approx(0.3 * e * (math.cos(wd * t) - xi * omega * math.sin(wd * t) / wd), rel=1e-10)


def test_modal_energy_equals_work_of_the_impulse():
    """Undamped mass-normalised modes at rest: an impulse g does work g²/2 (kinetic energy of a
    unit mass), and the energy then stays constant (to rounding, 1e-12)."""
    omega = 2 * math.pi * np.array([200.0, 1300.0, 7000.0])
    g = np.array([0.02, -0.5, 1.3])
    bank = ModalOscillators(omega, 0.0, 1 / 96000)
    bank.advance(g)
    for _ in range(500):
        np.testing.assert_allclose(bank.energy(), 0.5 * g ** 2, rtol=1e-12)
        bank.advance()


def test_spread_pulse_energy_equals_its_spectrum():
    """A half-sine force spread over samples (impulse per step = its integral there): the energy
    after the pulse equals ½|Σ gₖ e^{iωtₖ}|² exactly (linear superposition of impulses), and the
    continuous work ½|F̂(ω)|² within 1 % (lumping at 8 samples per contact, modes to 9 kHz ≈
    τ⁻¹/2.7: measured 0.006 %, 0.08 %, 0.73 %; the error grows as (ωΔt)²)."""
    omega = 2 * math.pi * np.array([800.0, 3000.0, 9000.0])
    dt, tau, J = 1 / 192000, 8 / 192000, 0.7
    bank = ModalOscillators(omega, 0.0, dt)
    t = np.arange(40) * dt
    g = half_sine_integral(t + dt / 2, 0.0, tau, J) - half_sine_integral(t - dt / 2, 0.0, tau, J)
    for gk in g:
        bank.advance(gk)
    discrete = 0.5 * np.abs(np.sum(g[:, None] * np.exp(1j * omega * t[:, None]), axis=0)) ** 2
    np.testing.assert_allclose(bank.energy(), discrete, rtol=1e-10)
    tt = np.linspace(0, tau, 20001)
    F = half_sine(tt, 0.0, tau, J)
    spectrum = np.trapezoid(F[:, None] * np.exp(1j * omega * tt[:, None]), tt, axis=0)
    np.testing.assert_allclose(bank.energy(), 0.5 * np.abs(spectrum) ** 2, rtol=1e-2)


def test_hertz_duration_of_a_steel_ball_on_steel():
    """PHYSICS.md: 1 cm (radius) steel ball at 1 m/s on a flat steel block: τ ≈ 71 µs (1.5 %)."""
    steel = MATERIALS["steel"]
    m = steel.density * 4 / 3 * math.pi * 0.01 ** 3
    tau = hertz_duration(1.0, m, 0.01, steel)
    assert tau == pytest.approx(71e-6, rel=0.015)
    # τ ∝ v^(−1/5), and a softer partner lengthens the contact
    assert hertz_duration(32.0, m, 0.01, steel) == pytest.approx(tau / 2, rel=1e-12)
    assert hertz_duration(1.0, m, 0.01, steel, MATERIALS["oak"]) > tau
    assert half_sine_integral(1.0, 0.0, tau, 2.5) == 2.5


def test_effective_mass_of_a_bar_struck_at_its_end():
    """Rigid-body dynamics: a bar (L = 0.2 m, t = 0.01 m) hit normally at one end's face feels
    1/m̂ = 1/m + (L/2)²/I_yy with I_yy = m(L² + t²)/12, i.e. m̂ = m/3.9925 (rounding only)."""
    import trimesh

    from wavesolve.contact import effective_mass, mass_properties

    mesh = trimesh.creation.box(extents=[0.2, 0.02, 0.01])
    m, _, centre, inertia = mass_properties(mesh, 7850.0)
    got = effective_mass(m, centre, np.linalg.inv(inertia), np.array([0.1, 0.0, -0.005]), np.array([0, 0, 2.0]))
    assert got == pytest.approx(m / (1 + 0.01 * 12 / 0.0401), rel=1e-9)
    assert effective_mass(m, centre, np.linalg.inv(inertia), np.zeros(3), np.array([0, 0, 1.0])) == pytest.approx(m)
