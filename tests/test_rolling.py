"""Rolling and sliding contact (``wavesolve.rolling``) and the shaders it drives.

Physics checked: the contact patch's filter against the mean of a wave under the Hertz line load
(quadrature); the linearised Hertz stiffness and patch radius against Hertz's law; a generated
profile's RMS (Parseval) and spectral slope; the contact's force under a sinusoidal roughness
against the closed-form response of the mass–spring–dashpot; the modal shader's steady response to
a rolling force against the mode's frequency response; acceleration_noise's rigid acceleration
F/m (Newton); the file round trip, and bad files as scene errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from scipy import integrate

import wavesolve
from wavesolve.errors import SceneError
from wavesolve.materials import MATERIALS
from wavesolve.modes import ModeSet
from wavesolve.rolling import (
    ContactForce,
    contact_force,
    hertz_constant,
    hertz_contact,
    load_rolling,
    patch_filter,
    profile,
    rolling_pieces,
    save_rolling,
)


@pytest.mark.parametrize("z", [0.0, 1e-4, 0.5, 2.0, 7.0, 20.0])
def test_patch_filter_is_the_mean_of_a_wave_under_the_hertz_line_load(z):
    """A Hertz pressure √(1 − ρ²/a²) integrated across the patch gives the line load (1 − x²/a²);
    the load-weighted mean of cos(κx) over it is H(κa). Quadrature to 1e-10."""
    num = integrate.quad(lambda x: (1 - x * x) * math.cos(z * x), -1, 1, limit=200)[0]
    assert float(patch_filter(z)) == pytest.approx(num / (4.0 / 3.0), abs=1e-10)


def test_hertz_stiffness_and_patch_radius_follow_hertz_law():
    """N = K δ^{3/2}, K = (4/3)E*√R*: k = dN/dδ by central difference, a = √(R*δ); glass on
    ceramic (a marble, R = 8 mm, in a bowl taken flat), N = 0.05 N. Relative 1e-6 (difference step)."""
    glass, ceramic = MATERIALS["glass"], MATERIALS["ceramic"]
    e_star = 1 / ((1 - glass.poisson_ratio ** 2) / glass.youngs_modulus
                  + (1 - ceramic.poisson_ratio ** 2) / ceramic.youngs_modulus)
    big_k, r = 4 / 3 * e_star * math.sqrt(0.008), 0.008
    n = 0.05
    delta = (n / big_k) ** (2 / 3)
    h = delta * 1e-4
    slope = (big_k * (delta + h) ** 1.5 - big_k * (delta - h) ** 1.5) / (2 * h)
    k, a = hertz_contact(n, glass, ceramic, r)
    assert float(k) == pytest.approx(slope, rel=1e-6)
    assert float(a) == pytest.approx(math.sqrt(r * delta), rel=1e-12)


def test_a_profile_has_its_rms_and_spectral_slope():
    """Unfiltered, the profile's RMS is the requested one (Parseval, to rounding); its periodogram,
    averaged over octave bands inside [SHORTEST, LONGEST], falls as κ^(−2): fitted slope within 0.1
    (with 2²⁰ samples the band means scatter by a few %); its slope dr/ds matches finite differences
    of r to 1 % of its RMS (the spectrum ends at 20 µm, 40 samples a wavelength at 0.5 µm spacing)."""
    rng = np.random.default_rng(3)
    spacing = 0.5e-6
    r, dr = profile(1e-6, 0.5, spacing, rng)
    assert math.sqrt(np.mean(r ** 2)) == pytest.approx(1e-6, rel=1e-9)
    psd = np.abs(np.fft.rfft(r)) ** 2
    kappa = 2 * math.pi * np.fft.rfftfreq(len(r), spacing)
    edges = 2 * math.pi / 0.02 * 2.0 ** np.arange(0, 9)
    mid = [math.sqrt(lo * hi) for lo, hi in zip(edges[:-1], edges[1:])]
    mean = [psd[(kappa >= lo) & (kappa < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    fit = np.polyfit(np.log(mid), np.log(mean), 1)[0]
    assert fit == pytest.approx(-2.0, abs=0.1)
    fd = np.gradient(r, spacing)
    assert np.sqrt(np.mean((fd - dr) ** 2)) < 0.01 * np.sqrt(np.mean(dr ** 2))


def test_a_short_path_has_a_long_paths_roughness_at_its_wavelengths():
    """A surface's spectrum does not depend on how far a touch rolls: over a 1.5 mm path (shorter
    than the 20 mm longest wavelength) the profile's content at wavelengths under 1 mm has the RMS
    a 0.5 m path has there (each frequency bin holds the variance the spectrum puts in its width:
    2 % for the coarse bins' edges), and its whole RMS is less than the surface's."""
    def short_waves(length: float) -> tuple[float, float]:
        r, _ = profile(1e-6, length, 0.5e-6, np.random.default_rng(1))
        kappa = 2 * math.pi * np.fft.rfftfreq(len(r), 0.5e-6)
        c = np.fft.rfft(r)
        c[kappa < 2 * math.pi / 1e-3] = 0.0
        return float(np.sqrt(np.mean(np.fft.irfft(c, len(r)) ** 2))), float(np.sqrt(np.mean(r ** 2)))

    long, short = short_waves(0.5), short_waves(0.0015)
    assert short[0] == pytest.approx(long[0], rel=0.02)
    assert short[1] < 0.5 * long[1]


#: a 5 g marble's contact: glass on flat ceramic, R = 8 mm, under 0.05 N
MARBLE = dict(mass=0.005, load=0.05, big_k=hertz_constant(MATERIALS["glass"], MATERIALS["ceramic"], 0.008))


@pytest.mark.parametrize("frequency", [300.0, 2000.0, 12000.0])
def test_the_contact_force_under_a_small_sinusoidal_roughness(frequency):
    """μ ü = F_c − N driven by r = A sin ωt with A = 1e-3 of the static compression δ₀ (the contact
    linear): in steady state |F| = A μω² |k + iωc| / |k − μω² + iωc| (k = dN/dδ, c = 2ζ√(kμ);
    below, near and above the resonance ω_c/2π = 3.6 kHz), times sin(x)/x, x = ωΔt/2, as each
    sample is F's mean over its interval. Integrated at 768 kHz, output at 96 kHz. The transient
    decays as e^(−ζω_c t): after 20 ms it is 1e-20 of itself; the amplitude is a least-squares fit
    of cos and sin at ω to the last 10 ms. Relative 0.5 % (the rest of Hertz's law, O(A/δ₀); the
    inputs linear across 1.3 µs steps, sin²(x/8)/(x/8)² ≥ 0.9992 at 12 kHz)."""
    mass, load, big_k, zeta, rate = MARBLE["mass"], MARBLE["load"], MARBLE["big_k"], 0.1, 96_000.0
    k = 1.5 * big_k ** (2 / 3) * load ** (1 / 3)
    amp = 1e-3 * (load / big_k) ** (2 / 3)
    w = 2 * math.pi * frequency
    c = 2 * zeta * math.sqrt(k * mass)
    fine = np.arange(int(0.03 * rate) * 8 + 1) / (8 * rate)
    f = contact_force(amp * np.sin(w * fine), amp * w * np.cos(w * fine), 8 * rate, mass, big_k, load, zeta, 8)
    t = fine[::8]
    late = t >= 0.02
    basis = np.stack([np.cos(w * t[late]), np.sin(w * t[late])], axis=1)
    got = float(np.linalg.norm(np.linalg.lstsq(basis, f[late], rcond=None)[0]))
    x = w / rate / 2
    want = amp * mass * w * w * abs(k + 1j * w * c) / abs(k - mass * w * w + 1j * w * c) * math.sin(x) / x
    print(f"{frequency} Hz: {got / want - 1:+.2e}")
    assert got == pytest.approx(want, rel=5e-3)


def test_a_rough_contact_opens_and_its_mean_force_is_the_load():
    """Roughness of 3× the static compression (white between 1 and 20 kHz): the light body leaves
    the surface and lands again, a rattle. The contact force F_c = F + N is never negative and is 0
    while open (F = −N); and, momentum, Σ Fᵢ Δt = μ (u̇(T) − u̇(0)) with u̇ bounded (the body
    bounces at mm/s to cm/s), so over 1 s the mean of F is the load's to 1 % of N (measured 9e-4).
    The samples are interval means for this: point samples of the force drifted by 3 % of N."""
    mass, load, big_k, rate = MARBLE["mass"], MARBLE["load"], MARBLE["big_k"], 96_000.0
    rng = np.random.default_rng(5)
    n = int(1.0 * rate) * 8
    spec = np.fft.rfft(rng.normal(size=n))
    freq = np.fft.rfftfreq(n, 1 / (8 * rate))
    spec[(freq < 1000.0) | (freq > 20_000.0)] = 0.0
    scale = 3 * (load / big_k) ** (2 / 3) / np.sqrt(np.mean(np.fft.irfft(spec, n) ** 2))
    r, rdot = scale * np.fft.irfft(spec, n), scale * np.fft.irfft(spec * 2j * math.pi * freq, n)
    f = contact_force(r, rdot, 8 * rate, mass, big_k, load, decimate=8)
    opened = f <= -load * (1 - 1e-12)
    print(f"open {opened.mean():.1%} of the time; mean F / N {f.mean() / load:+.2e}; peak F / N {f.max() / load:.1f}")
    assert f.min() >= -load * (1 + 1e-12)
    assert opened.mean() > 0.05
    assert abs(f.mean()) < 0.01 * load


def _sine_touch(t0=0.002, t1=0.030, frequency=1500.0, amplitude=0.02, direction=(0.0, 0.0, 1.0),
                point=(0.0, 0.0, -0.05), rate=96_000.0) -> ContactForce:
    n = int((t1 - t0) * rate) + 1
    t = t0 + np.arange(n) / rate
    times = np.linspace(t0, t0 + (n - 1) / rate, 29)
    return ContactForce(t0, rate, amplitude * np.sin(2 * math.pi * frequency * (t - t0)), times,
                        np.tile(point, (len(times), 1)), np.tile(direction, (len(times), 1)))


def test_rolling_file_round_trip_and_exact_integrals(tmp_path):
    """save → load gives the same arrays; a piece's impulse is ∫F dt of the force linear between its
    samples (the trapezoid rule on the samples and the ends, exact for it; 1e-12 relative)."""
    cf = _sine_touch()
    path = save_rolling(tmp_path / "r.h5", [cf, _sine_touch(0.04, 0.05)])
    back = load_rolling(path)
    assert len(back) == 2 and np.array_equal(back[0].force, cf.force) and np.array_equal(back[0].times, cf.times)
    pieces = rolling_pieces(back)
    assert len(pieces) == 2 * 28 and all(a.t0 <= b.t0 for a, b in zip(pieces, pieces[1:]))
    p = pieces[5]
    a, b = p.t0 + 1.3e-5, p.end - 2.1e-5
    knots = cf.start + np.arange(len(cf.force)) / cf.rate
    x = np.concatenate([[a], knots[(knots > a) & (knots < b)], [b]])
    y = cf.at(x)
    want = float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))
    assert float(p.impulse_between(a, b)[2]) == pytest.approx(want, rel=1e-12)
    # where two pieces meet the force counts once; the pieces cover the touch from start to end
    first = [q for q in pieces if q._parent is back[0]]
    edge = first[3].end
    assert sum(float(q.force(edge)[2]) for q in first) == pytest.approx(float(back[0].at(edge)), abs=1e-15)
    assert first[0].t0 == back[0].start and first[-1].end == back[0].end
    assert float(first[-1].force(back[0].end)[2]) == float(back[0].at(back[0].end))


SPHERE_SCENE = """
[simulation]
duration = 0.004
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.05, subdivisions = 3 }}
[[objects.shaders]]
type = "{kind}"
material = "steel"
{extra}
rolling_file = "{file}"
[[listeners]]
name = "ear"
position = [0.12, 0.0, 0.0]
"""


def _scene(tmp_path, kind: str, file: str = "r.h5", extra: str = ""):
    path = tmp_path / f"{kind}.toml"
    path.write_text(SPHERE_SCENE.format(kind=kind, file=file, extra=extra))
    return wavesolve.load_scene(path)


def test_acceleration_noise_accelerates_the_body_by_the_rolling_force(tmp_path):
    """Newton: a rolling force F(t) along d through the centre of mass moves every surface point
    with a = F d / m (no rotation: α = I⁻¹ (r × F) = 0 for r ∥ d). Exact to rounding (1e-12)."""
    save_rolling(tmp_path / "r.h5", [_sine_touch()])
    shader = _scene(tmp_path, "acceleration_noise").objects[0].shaders[0]
    for t in (0.0021, 0.0107, 0.0293):
        a, alpha = shader.rigid_acceleration(t)
        want = float(_sine_touch().at(t)) / shader.mass
        assert a == pytest.approx([0.0, 0.0, want], abs=1e-12 * abs(want) + 1e-18)
        assert np.abs(alpha).max() <= 1e-9 * abs(want) / 0.05
    assert shader.active_intervals(0.0, 1.0) == [(0.002, pytest.approx(0.030, abs=2e-5))]


def test_the_modal_shader_rings_in_steady_state_with_a_rolling_force(tmp_path):
    """One synthetic mode (the sphere's rigid translation along z as a 1 kHz mode, U = ẑ/√m,
    ξ = 0.05) driven by F = F₀ sin ωt along z at 1.5 kHz: in steady state
    |q̈| = ω² |U·d| F₀ / |ω₀² − ω² + 2iξω₀ω|. After 20 ms the transient is e^(−ξω₀·18 ms) = 3.5e-3
    of itself; bound 1 % (the transient's residue plus the oscillators' 192 kHz sampling); measured
    0.08 % low."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    mass = mesh.volume * MATERIALS["steel"].density
    shapes = np.zeros((len(mesh.vertices), 3, 1))
    shapes[:, 2, 0] = 1 / math.sqrt(mass)
    ModeSet(np.array([1000.0]), np.array([0.05]), shapes).save(tmp_path / "m.h5")
    save_rolling(tmp_path / "r.h5", [_sine_touch()])
    shader = _scene(tmp_path, "modal", extra='modes = "m.h5"').objects[0].shaders[0]
    t = np.arange(0.022, 0.0295, 1 / 50_000.0)
    qdd = shader.modal_acceleration_block(t)[:, 0]
    w, w0 = 2 * math.pi * 1500.0, 2 * math.pi * 1000.0
    want = w * w * 0.02 / math.sqrt(mass) / abs(w0 * w0 - w * w + 2j * 0.05 * w0 * w)
    got = 0.5 * (qdd.max() - qdd.min())
    print(f"steady modal acceleration {got:.6g}, closed form {want:.6g}")
    assert got == pytest.approx(want, rel=0.01)


def test_a_bad_rolling_file_is_a_scene_error(tmp_path):
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(SceneError, match="bad rolling file") as err:
        _scene(tmp_path, "acceleration_noise", "bad.h5")
    assert err.value.key == "objects[0].shaders[0].rolling_file"
    with pytest.raises(SceneError, match="does not exist"):
        _scene(tmp_path, "acceleration_noise", "missing.h5")


ROLLING_BALL = """
[physics]
duration = 0.3
time_step = 0.0005

[ground]
material = "oak"
roughness = {ground}

[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.02, subdivisions = 2 }}
material = "steel"
position = [0.0, 0.0, 0.02]
velocity = [0.5, 0.0, 0.0]
angular_velocity = [0.0, 25.0, 0.0]
rolling_friction = 0.0
roughness = {ball}
modal = false

[sound]
cell_size = 0.01
margin = 0.04
"""


def _rolling_ball(tmp_path, ground: float, ball: float):
    pytest.importorskip("pybullet")
    from wavesolve.physics import extract_events, extract_touches, load_setup, run_engine
    from wavesolve.physics.rolling_forces import body_rolling

    path = tmp_path / "setup.toml"
    path.write_text(ROLLING_BALL.format(ground=ground, ball=ball))
    setup = load_setup(path)
    rec = run_engine(setup)
    events = extract_events(rec)
    return setup, rec, events, body_rolling(setup, rec, extract_touches(rec, events))


def test_a_ball_rolling_on_a_rough_floor_feels_the_floors_roughness_at_its_speed(tmp_path):
    """A steel ball (R = 2 cm, m = 0.26 kg) rolling at v = 0.5 m/s on a floor of RMS roughness
    0.2 µm (the ball smooth): the engine's touch → the force's RMS must match the model's prediction
    for that speed, var F = ∫ |T(vκ)|² |H(κa)|² S(κ) dκ over the profile's band below the anti-alias
    cut, S(κ) ∝ κ⁻² scaled to (0.2 µm)², T the contact's closed-form transfer (μ = m: the normal
    passes through the centre; k, a from Hertz at m g, steel on flat oak). A speed read wrong by a
    factor s moves the RMS by about s^1.5 here; each sample is its interval's mean, a factor
    sin(x)/x, x = ωΔt/2. Measured 2.0 % high after the first 20 ms; bound 5 % (one realisation over
    a 15 cm path: the cross terms of its discrete spectrum do not cancel exactly in a finite
    average; Hertz's law beyond its linearisation, the roughness a fifth of the static compression
    of 1 µm). A smooth floor and ball give no force at all."""
    from wavesolve.rolling import CONTACT_DAMPING, FORCE_RATE, LONGEST, SHORTEST

    setup, rec, events, rolling = _rolling_ball(tmp_path, 2e-7, 0.0)
    assert events == [] and len(rolling[0]) == 1
    cf = rolling[0][0]
    states = np.rint(cf.times / rec.time_step).astype(int)
    up = np.einsum("nij,nj->ni", rec.rotation(0)[states], cf.direction)   # the object frame turns as it rolls
    assert np.allclose(up, [0.0, 0.0, 1.0], atol=1e-6)                       # the floor pushes the ball up
    body = setup.bodies[0]
    v, mass = 0.5, body.mass
    radius = (3 * body.volume / (4 * math.pi)) ** (1 / 3)
    k, a = (float(x) for x in hertz_contact(mass * 9.81, MATERIALS["steel"], MATERIALS["oak"], radius))
    c = 2 * CONTACT_DAMPING * math.sqrt(k * mass)
    kappa = np.geomspace(2 * math.pi / LONGEST, min(2 * math.pi / SHORTEST, 2 * math.pi * 0.45 * FORCE_RATE / v),
                         20001)
    scale = 4e-14 / (1 / kappa[0] - 1 / (2 * math.pi / SHORTEST))
    w = v * kappa
    transfer = mass * w * w * np.abs(k + 1j * w * c) / np.abs(k - mass * w * w + 1j * w * c)
    x = w / FORCE_RATE / 2                                # each sample is its interval's mean
    integrand = (transfer * np.sin(x) / x) ** 2 * patch_filter(kappa * a) ** 2 * scale / kappa ** 2
    want = math.sqrt(float(np.sum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(kappa))))
    t = cf.start + np.arange(len(cf.force)) / cf.rate
    got = math.sqrt(float(np.mean(cf.force[t > 0.02] ** 2)))
    print(f"RMS force {got:.4g} N, predicted {want:.4g} N")
    assert got == pytest.approx(want, rel=0.05)
    assert _rolling_ball(tmp_path, 0.0, 0.0)[3] == [[]]


BALL_ON_SLAB = """
[physics]
duration = 0.2
time_step = 0.0005

[ground]
material = "oak"

[[objects]]
name = "slab"
mesh = { primitive = "box", size = [0.4, 0.2, 0.02] }
material = "steel"
position = [0.0, 0.0, 0.01]
roughness = 1e-7
modal = false

[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.01, subdivisions = 2 }
material = "glass"
position = [-0.05, 0.0, 0.03]
velocity = [0.3, 0.0, 0.0]
angular_velocity = [0.0, 30.0, 0.0]
roughness = 1e-8
modal = false
"""


def test_two_bodies_in_rolling_contact_feel_equal_and_opposite_forces(tmp_path):
    """Newton's third law: a glass ball rolling on a steel slab (both rough, the slab resting on a
    smooth floor): the ball and the slab each get the touch's force, the same samples, along
    opposite world directions at the same world point (to rounding, 1e-12), the ball's pushed up
    (+z: the normal from the slab to the ball)."""
    pytest.importorskip("pybullet")
    from wavesolve.physics import extract_events, extract_touches, load_setup, run_engine
    from wavesolve.physics.rolling_forces import body_rolling

    path = tmp_path / "setup.toml"
    path.write_text(BALL_ON_SLAB)
    setup = load_setup(path)
    rec = run_engine(setup)
    slab, ball = body_rolling(setup, rec, extract_touches(rec, extract_events(rec)))
    assert len(ball) == 1 and len(slab) == 1        # the slab on the smooth floor does not slide: no force
    a, b = ball[0], slab[0]
    assert a.start == b.start and np.array_equal(a.force, b.force) and np.array_equal(a.times, b.times)
    states = np.rint(a.times / rec.time_step).astype(int)
    world = []
    for i, cf in ((1, a), (0, b)):
        x, R = setup.bodies[i].object_pose(rec.position[i, states], rec.rotation(i)[states])
        world.append((np.einsum("nij,nj->ni", R, cf.position) + x, np.einsum("nij,nj->ni", R, cf.direction)))
    np.testing.assert_allclose(world[0][0], world[1][0], atol=1e-12)
    np.testing.assert_allclose(world[0][1], -world[1][1], atol=1e-12)
    assert np.all(world[0][1][:, 2] > 0.999)
    assert np.sqrt(np.mean(a.force ** 2)) > 0


def test_a_modal_shader_driven_by_rolling_restarts_with_the_exact_state(tmp_path):
    """Time-parallel chunks restart shaders with ``reset(t)``: after it, q̈ at later times equals a
    run from 0 through the rolling (the oscillators are stepped through every rolling piece either
    way): to 1e-12 of its peak."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    shapes = np.zeros((len(mesh.vertices), 3, 2))
    shapes[:, 2, 0], shapes[:, 0, 1] = 0.3, 0.2
    ModeSet(np.array([700.0, 1900.0]), np.array([0.02, 0.01]), shapes).save(tmp_path / "m.h5")
    save_rolling(tmp_path / "r.h5", [_sine_touch(direction=(0.6, 0.0, 0.8)), _sine_touch(0.035, 0.05)])
    times = np.arange(0.0101, 0.06, 1 / 41_000.0)
    whole = _scene(tmp_path, "modal", extra='modes = "m.h5"').objects[0].shaders[0]
    want = np.stack([whole.modal_acceleration(float(t)) for t in times])
    fresh = _scene(tmp_path, "modal", extra='modes = "m.h5"').objects[0].shaders[0]
    fresh.reset(0.0101)
    got = np.stack([fresh.modal_acceleration(float(t)) for t in times])
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_the_written_scene_wires_the_rolling_forces(tmp_path):
    """simulate-physics' writer: the rolling ball's forces go to ``ball_rolling.h5``, named by its
    acceleration_noise table (the ball has no modes in range), and the scene loads with them: the
    shader's pieces carry the file's whole impulse (∫F dt, to rounding)."""
    pytest.importorskip("pybullet")
    from wavesolve.physics import body_impacts
    from wavesolve.physics.scene_writer import write_scene

    setup, rec, events, rolling = _rolling_ball(tmp_path, 2e-7, 0.0)
    written = write_scene(setup, rec, events, body_impacts(setup, rec, events), tmp_path / "scene",
                          rolling=rolling)
    assert written.rolling == {"ball": 1} and (tmp_path / "scene" / "ball_rolling.h5") in written.files
    assert 'rolling_file = "ball_rolling.h5"' in written.scene.read_text()
    shader = wavesolve.load_scene(written.scene).objects[0].shaders[-1]
    cf = rolling[0][0]
    total = sum(float(p.impulse_between(p.t0, p.end) @ p.direction) for p in shader.forces)
    assert total == pytest.approx(float(cf.integral(cf.end)), rel=1e-9, abs=1e-12)
