"""Physics engine → sound (``wavesolve.physics``, ``wavesolve simulate-physics``).

Checks: free-fall impact speed against √(2gh); each impact's impulse against the momentum change
it caused; the whole recording's contact impulses against the bodies' momentum change (friction
included); the exported motion's acceleration away from contacts; PyBullet's own logs imported
equal to the in-memory recording; the written scene validates and sounds after (not before) the
impact; bad setups exit 2 naming file, key and fix; the package imports without the engine.
"""
from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")  # in the test extra up to Python 3.11 (no wheels after it: pyproject.toml)

from wavesolve.motion import Keyframes, read_keyframes
from wavesolve.physics import GROUND, body_impacts, extract_events, load_setup, run_engine
from wavesolve.physics.bullet_logs import read_bullet_logs
from wavesolve.physics.scene_writer import write_scene

G = 9.81

DROP = """
[physics]
duration = {duration}
time_step = 0.0005

[ground]
restitution = 1.0

[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.02, subdivisions = 2 }}
material = "steel"
position = [0.0, 0.0, {z}]
restitution = 0.5
modal = false

[sound]
cell_size = 0.01
margin = 0.04
{sound}
"""


def _setup(tmp_path, text: str, name: str = "setup.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_setup(path)


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    """A steel ball (r = 2 cm) dropped from h = 0.3 m (its lowest point) onto the plane, bouncing."""
    tmp = tmp_path_factory.mktemp("drop")
    setup = _setup(tmp, DROP.format(duration=1.0, z=0.32, sound=""))
    rec = run_engine(setup, logs=(tmp / "robot.log", tmp / "contacts.log"))
    return setup, rec, extract_events(rec), tmp


def test_ball_drop_hits_at_free_fall_speed(drop):
    """First impact speed vs √(2gh), h = 0.3 m (energy conservation in free fall).

    Tolerance 2 % (the issue's bound). The engine reports the contact at the end of the step in
    which the gap closed and the speed is read before that step, so the error is about
    g·Δt/v = 0.2 % at Δt = 0.5 ms; measured −0.13 %.
    """
    events = drop[2]
    first = events[0]
    assert (first.body_a, first.body_b) == (0, GROUND)
    expected = math.sqrt(2 * G * 0.3)
    assert first.speed == pytest.approx(expected, rel=0.02)
    assert first.time == pytest.approx(math.sqrt(2 * 0.3 / G), abs=2e-3)
    assert np.allclose(first.normal, [0, 0, 1], atol=1e-9)
    # the ball bounces (restitution) and then rests: a second, slower impact, and nothing while resting
    assert 1 <= len(events) - 1 <= 5 and events[1].speed < first.speed
    assert all(e.time < 0.8 for e in events)


def test_impulse_matches_momentum_change(drop):
    """Each impact's impulse J vs m Δv − m g T over the steps it collected (Newton's second law).

    The engine's semi-implicit Euler step gives v⁺ = v + (g + F/m)Δt exactly, so the balance holds
    to float64 rounding of the sums: bound 1e-9 relative (measured ≈ 1e-14).
    """
    setup, rec, events, _ = drop
    m = setup.bodies[0].mass
    for e in events:
        dv = rec.velocity[0, e.last] - rec.velocity[0, e.first - 1]
        steps = e.last - e.first + 1
        change = m * dv - m * np.array([0, 0, -G]) * steps * rec.time_step
        assert np.allclose(e.impulse, change, rtol=1e-9, atol=1e-12 * m)
    # the impulse is the collision's, not the rest load: about m(1 + e')v for a bounce
    assert np.linalg.norm(events[0].impulse) > m * events[0].speed


def test_contact_impulses_balance_momentum_with_friction(tmp_path):
    """A tilted box thrown sideways: it lands, slides, tumbles. Sum of every contact impulse
    (normal + friction, with their engine signs) vs m Δv − m g T over the whole run (momentum
    balance). Bound 1e-9 relative to m|v₀| (float64 sums; measured ≈ 1e-15). Also: impacts of a
    moving corner come as separate events and both bodies of a box–box impact get one."""
    setup = _setup(tmp_path, """
        [physics]
        duration = 0.6
        [ground]
        [[objects]]
        name = "die"
        mesh = { primitive = "box", size = [0.02, 0.02, 0.02] }
        material = "abs"
        position = [0.0, 0.0, 0.05]
        orientation = [0.95, 0.2, 0.2, 0.1]
        velocity = [0.8, 0.0, 0.0]
        angular_velocity = [0.0, 10.0, 0.0]
        restitution = 0.4
        [[objects]]
        name = "other"
        mesh = { primitive = "box", size = [0.02, 0.02, 0.02] }
        material = "abs"
        position = [0.12, 0.0, 0.0101]
        """)
    rec = run_engine(setup)
    c = rec.contacts
    for i, body in enumerate(setup.bodies):
        on = (c["body_a"] == i)
        total = c["impulse"][on].sum(axis=0) - c["impulse"][c["body_b"] == i].sum(axis=0)
        change = body.mass * (rec.velocity[i, -1] - rec.velocity[i, 0]) \
            - body.mass * np.array([0, 0, -G]) * (len(rec.times) - 1) * rec.time_step
        assert np.allclose(total, change, atol=1e-9 * body.mass * 0.8)
    events = extract_events(rec)
    assert len(events) >= 2
    assert any(e.body_b == 0 and e.body_a == 1 for e in events), "the die should hit the other die"
    impacts = body_impacts(setup, rec, events)
    hit = next(e for e in events if e.body_a == 1 and e.body_b == 0)
    on_die = impacts[1].rows[np.isclose(impacts[1].rows[:, 0], hit.time)]
    on_other = impacts[0].rows[np.isclose(impacts[0].rows[:, 0], hit.time)]
    # equal and opposite in the world: |J| the same on both, each in its own frame
    assert np.linalg.norm(on_die[:, 4:7].sum(axis=0)) == pytest.approx(
        np.linalg.norm(on_other[:, 4:7].sum(axis=0)), rel=1e-9)


def test_exported_motion_acceleration_is_continuous_away_from_contacts(drop):
    """The motion file's C² keyframe spline (wavesolve.motion) in free flight, ≥ 10 ms from any step
    with a contact, vs the free-fall acceleration g (the engine's positions are a parabola there).

    A velocity jump at a bounce makes a cubic spline ring with a factor 2 − √3 ≈ 0.27 per knot:
    after 20 knots (10 ms at the 2 kHz export rate) that is < 1e-8 of Δv/Δt. Bounds: |a − g| <
    0.5 % of g, and neighbouring samples 0.1 ms apart differ by < 0.5 % of g (no jumps)."""
    setup, rec, events, tmp = drop
    out = tmp / "scene"
    written = write_scene(setup, rec, events, body_impacts(setup, rec, events), out)
    motion = Keyframes(*read_keyframes(out / "ball_motion.h5"))
    contact_times = rec.times[np.unique(rec.contacts["state"])]
    t = np.arange(0.01, contact_times.min() - 0.01, 1e-4)
    bounce_end = events[0].end
    t = np.concatenate([t, np.arange(bounce_end + 0.01, events[1].time - 0.01, 1e-4)])
    acc = np.array([motion.state(x).acceleration for x in t])
    assert np.abs(acc - [0, 0, -G]).max() < 0.005 * G
    first_flight = t < contact_times.min()
    assert np.abs(np.diff(acc[first_flight, 2])).max() < 0.005 * G
    assert written.impacts == {"ball": len(events)}


def test_bullet_logs_import_equals_the_recording(drop):
    """PyBullet's own GENERIC_ROBOT and CONTACT_POINTS logs, imported, vs the in-memory recording:
    states to float32 rounding (bound 1e-6 m, 1e-5 m/s), the same impacts (times exact, speeds and
    normal impulses to 1e-5 relative: float32 logs; the contact log has no friction, none here)."""
    setup, rec, events, tmp = drop
    imported = read_bullet_logs(setup, tmp / "robot.log", tmp / "contacts.log")
    assert imported.position.shape == rec.position.shape
    assert np.abs(imported.position - rec.position).max() < 1e-6
    assert np.abs(imported.velocity - rec.velocity).max() < 1e-5
    again = extract_events(imported)
    assert [e.time for e in again] == [e.time for e in events]
    for a, b in zip(again, events):
        assert a.speed == pytest.approx(b.speed, rel=1e-5)
        assert a.impulse == pytest.approx(b.impulse, rel=1e-5, abs=1e-9)


def test_bad_log_is_refused(tmp_path, drop):
    setup = drop[0]
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"stepCount,timeStamp\nIf\n\x00\x01\x02")
    with pytest.raises(ValueError, match="truncated|marker"):
        read_bullet_logs(setup, bad, bad)


def test_simulate_physics_scene_validates_and_sounds(tmp_path, cli):
    """End to end: `wavesolve simulate-physics` on a short drop (2 cm, impact at ≈ 64 ms), again
    from the PyBullet logs it wrote (same impacts to float32 rounding), with a
    coarse run (`--run`, h = 1 cm) of the scene it wrote. The motion alone is silent (no surface_motion
    shader), so the listener hears nothing (< 1e-6 of the peak) until the click's sound can
    arrive from the nearest point of the ball, and then hears it."""
    import wavesolve

    path = tmp_path / "drop.toml"
    path.write_text(textwrap.dedent(DROP.format(duration=0.2, z=0.04, sound="duration = 0.075")))
    out = tmp_path / "scene_dir"
    done = cli("simulate-physics", path, "-o", out, "--write-logs", "--run", "--backend", "numpy")
    assert done.returncode == 0, done.stderr
    # the same scene from PyBullet's own logs of that run: the same impacts (float32 logs)
    again = cli("simulate-physics", path, "-o", tmp_path / "from_logs", "--from-logs", out / "bullet_robot.log",
                out / "bullet_contacts.log")
    assert again.returncode == 0, again.stderr
    a = np.genfromtxt(out / "ball_impacts.csv", delimiter=",", skip_header=1)
    b = np.genfromtxt(tmp_path / "from_logs" / "ball_impacts.csv", delimiter=",", skip_header=1)
    assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-7)
    scene = wavesolve.load_scene(out / "scene.toml")
    assert scene.config.ground is not None and scene.objects[0].motion.moves
    rows = np.genfromtxt(out / "ball_impacts.csv", delimiter=",", names=True)
    t_hit = float(np.atleast_1d(rows["time"])[0])
    assert t_hit == pytest.approx(math.sqrt(2 * 0.02 / G), abs=2e-3)
    result = wavesolve.Result.load(out / "scene.h5")      # written by --run
    p = result.listener("above")
    t = np.arange(len(p)) / result.sample_rate
    # the whole ball surface radiates: the earliest path starts on its top, 2 cm above its centre
    distance = np.linalg.norm(scene.listeners[0].position - [0.0, 0.0, 0.02]) - 0.02
    before = t < t_hit + distance / 343.0 - 1e-3   # 1 ms: the resampling filter's reach ahead of an onset
    assert np.abs(p).max() > 0
    assert np.abs(p[before]).max() < 1e-6 * np.abs(p).max()


def test_bad_setup_exits_2(tmp_path, cli):
    """Unknown key (did-you-mean), a missing mesh, an object starting below the ground: exit 2,
    each naming the file, the key and a fix; nothing written."""
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent("""
        [physics]
        duraton = 1.0
        [ground]
        [[objects]]
        name = "a"
        mesh = "nowhere.obj"
        material = "steel"
        position = [0.0, 0.0, 0.0]
        [[objects]]
        name = "b"
        mesh = { primitive = "box", size = [0.02, 0.02, 0.02] }
        material = "stel"
        position = [0.0, 0.0, 0.0]
        """))
    out = tmp_path / "out"
    done = cli("simulate-physics", path, "-o", out)
    assert done.returncode == 2
    err = done.stderr
    assert "bad.toml: [physics.duraton] unknown key 'duraton' — did you mean 'duration'?" in err
    assert not out.exists()
    path.write_text(path.read_text().replace("duraton", "duration"))
    done = cli("simulate-physics", path, "-o", out)
    assert done.returncode == 2
    assert "[objects[0].mesh] mesh file" in done.stderr and "does not exist" in done.stderr
    assert "[objects[1].material] unknown material 'stel'" in done.stderr and "did you mean 'steel'" in done.stderr
    path.write_text(path.read_text().replace('"nowhere.obj"', '{ primitive = "icosphere", radius = 0.01 }')
                    .replace('"stel"', '"steel"'))
    done = cli("simulate-physics", path, "-o", out)
    assert done.returncode == 2
    assert "[objects[0].position] object 'a' starts below the ground plane" in done.stderr
    assert "fix: raise position's z by at least" in done.stderr
    assert not out.exists()


def test_a_marble_falls_into_a_bowl_that_collides_as_convex_parts(tmp_path, monkeypatch):
    """The marble-in-a-bowl showcase (scenes/physics/marble_bowl.toml, engine only, 0.4 s): with
    ``collision = "parts"`` (CoACD's convex parts of the bowl) the marble falls into the bowl, first
    meets it near its inside bottom and rests on its inner surface: at the end its centre lies
    within the rim's radius and the gap between marble and the true mesh (the signed distance of
    its centre less its radius, in the bowl's frame) is below 2 mm (the parts' hulls reach at
    most 1.1 mm into the cavity, collision.py, plus the contact's slop; measured 1.1 mm). As its
    convex hull, the bowl meets the marble on the rim's plane (z = 0.045), the hull's lid.
    The parts are cached: a second run reads the same file. A primitive asked to collide as parts
    is refused with the key named."""
    import igl

    from conftest import SCENES

    from wavesolve.errors import SceneError
    from wavesolve.physics import collision

    pytest.importorskip("coacd")      # in the test and physics extras

    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    text = (SCENES / "physics" / "marble_bowl.toml").read_text().replace("duration = 0.5", "duration = 0.4")
    text = text.replace('"../showcase/bowl.obj"', f'"{SCENES / "showcase" / "bowl.obj"}"')
    gaps, first_hit = {}, {}
    for mode in ("parts", "hull"):
        setup = _setup(tmp_path, text.replace('collision = "parts"', f'collision = "{mode}"'), f"{mode}.toml")
        bowl, marble = setup.bodies
        rec = run_engine(setup)
        origin, rotation = bowl.object_pose(rec.position[0][-1], rec.rotation(0)[-1])
        centre = rotation.T @ (rec.position[1][-1] - origin)
        distance = igl.signed_distance(centre[None], np.asarray(bowl.mesh.vertices),
                                       np.asarray(bowl.mesh.faces, dtype=np.int64))[0][0]
        gaps[mode] = (distance - 0.01, centre)
        hits = [e for e in extract_events(rec) if {e.body_a, e.body_b} == {0, 1}]
        first_hit[mode] = hits[0]
    gap, centre = gaps["parts"]
    assert gap < 0.002 and np.hypot(*centre[:2]) < 0.054 and centre[2] < 0.045
    # where the marble first meets the bowl: on its inside (the bottom at z = 0.010, the wall
    # rising to the rim at 0.045; measured 0.012), or on the hull's lid, the rim's plane
    assert first_hit["parts"].point[2] < 0.02 and first_hit["hull"].point[2] > 0.044
    files = list((tmp_path / "cache" / "collision").glob("*.obj"))
    assert len(files) == 1 and len(collision.part_vertices(files[0])) > 10
    stamp = files[0].stat().st_mtime_ns
    assert collision.convex_parts_file(collision.principal_mesh(
        bowl.mesh.vertices, bowl.mesh.faces, bowl.center, bowl.principal)) == files[0]
    assert files[0].stat().st_mtime_ns == stamp

    bad = text.replace('mesh = { primitive = "icosphere", radius = 0.01, subdivisions = 3 }',
                       'mesh = { primitive = "icosphere", radius = 0.01, subdivisions = 3 }\ncollision = "parts"')
    with pytest.raises(SceneError, match=r"\[objects\[1\]\.collision\] a sphere primitive is convex"):
        _setup(tmp_path, bad, "bad.toml")


def test_package_imports_without_the_engine(monkeypatch):
    """Without pybullet, `import wavesolve` and `wavesolve.physics` still work, and running the
    engine names the extra to install."""
    from wavesolve.physics import engine

    monkeypatch.setitem(sys.modules, "pybullet", None)   # `import pybullet` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "wavesolve\[physics\]"'):
        engine.require_pybullet()


def test_loading_the_engine_prints_nothing():
    """PyBullet's C library prints its build time when imported and when a client connects (on
    standard output or standard error, by build); a command's output and error streams stay clean."""
    import subprocess

    code = ("from wavesolve.physics import load_setup, run_engine; from conftest import SCENES; "
            "run_engine(load_setup(SCENES / 'physics' / 'dice.toml')); print('done')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent)
    assert done.stdout == "done\n" and "build time" not in done.stderr, done.stderr


def test_showcase_setups_validate_and_the_spinning_disk_speeds_up(tmp_path):
    """The showcase setups load; the spinning disk (scenes/physics/coin_spin.toml, engine only,
    run to 4.5 s instead of its 3.8) settles like Euler's disk: its rim impacts come faster as it
    tilts towards flat (the precession rate grows as the tilt angle falls, Moffatt, Nature 404,
    2000), then it lies still. Bound: ≥ 5× more impacts in 2.5–3.5 s than in 0.5–1.5 s, and none
    after 4.0 s. When it lands depends on rounding (the collapse is singular): measured 25 and 468
    impacts, the last at 3.86 s, with PyBullet 3.2.7's wheel on Python 3.11; 29 and 450, the last at
    3.78 s, with the same version built from source on Python 3.12.1 (so no bound on the landing
    time itself)."""
    from conftest import SCENES

    for name in ("bowl_drop", "dice", "marble_bowl"):
        assert load_setup(SCENES / "physics" / f"{name}.toml").bodies
    text = (SCENES / "physics" / "coin_spin.toml").read_text()
    assert "duration = 3.8\n" in text
    (tmp_path / "coin_spin.toml").write_text(text.replace("duration = 3.8\n", "duration = 4.5\n", 1))
    setup = load_setup(tmp_path / "coin_spin.toml")
    rec = run_engine(setup)
    t = np.array([e.time for e in extract_events(rec, setup.config.physics.min_impact_speed)])
    early = np.count_nonzero((t >= 0.5) & (t < 1.5))
    late = np.count_nonzero((t >= 2.5) & (t < 3.5))
    assert early > 0 and late >= 5 * early
    assert np.count_nonzero(t > 4.0) == 0, "the disk should lie still at the end"
