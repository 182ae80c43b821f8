"""End to end as a user runs it: run → HDF5 + WAV, info, plot; the result-file contract."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

import wavesolve
from wavesolve.constants import DEFAULT_LAYER_CELLS, WAV_PEAK_DBFS
from wavesolve.grid import Z_CELLS_MULTIPLE

SCENE = """
[simulation]
duration = 0.003
sample_rate = 44100.0
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }
[[listeners]]
name = "left"
position = [-0.1, 0.0, 0.0]
[[listeners]]
name = "up"
position = [0.0, 0.0, 0.1]
[output]
hdf5 = "result.h5"
wav = "sound.wav"
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("run")
    scene = d / "scene.toml"
    scene.write_text(SCENE)
    proc = subprocess.run([sys.executable, "-m", "wavesolve.cli", "run", str(scene), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return d, scene


def test_result_file_contract(ran):
    d, scene = ran
    with h5py.File(d / "result.h5", "r") as f:
        assert set(f["listeners"]) == {"left", "up"}
        ds = f["listeners/left"]
        assert ds.attrs["sample_rate"] == 44100.0
        np.testing.assert_allclose(ds.attrs["position"], [-0.1, 0.0, 0.0])
        assert ds.shape == (int(round(0.003 * 44100)),)
        assert f.attrs["scene"] == scene.read_text()
        assert f.attrs["wavesolve_version"] == wavesolve.__version__
        assert f.attrs["wav_gain"] > 0
    assert not list(d.glob(".*.tmp"))


def test_wav_is_normalised_to_minus_1_dbfs(ran):
    d, _ = ran
    rate, data = wavfile.read(d / "sound.wav")
    assert rate == 44100 and data.shape[1] == 2 and data.dtype == np.float32
    assert 20 * np.log10(np.max(np.abs(data))) == pytest.approx(WAV_PEAK_DBFS, abs=1e-3)
    result = wavesolve.Result.load(d / "result.h5")
    np.testing.assert_allclose(data[:, 0], result.listener("left") * result.metadata["wav_gain"], rtol=1e-5,
                               atol=1e-7)


def test_wav_in_pascals_flag(ran, cli, tmp_path):
    d, scene = ran
    proc = cli("run", scene, "-o", tmp_path / "p.h5", "--wav", tmp_path / "p.wav", "--wav-pascals", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    _, data = wavfile.read(tmp_path / "p.wav")
    result = wavesolve.Result.load(tmp_path / "p.h5")
    np.testing.assert_allclose(data[:, 1], result.listener("up"), rtol=1e-6, atol=1e-9)
    assert result.metadata["wav_gain"] == 1.0


def test_symmetric_listeners_hear_the_same(ran):
    """A pulsating sphere radiates isotropically: two listeners at the same radius agree (1 %)."""
    d, _ = ran
    result = wavesolve.Result.load(d / "result.h5")
    left, up = result.listener("left"), result.listener("up")
    assert np.linalg.norm(left - up) < 0.01 * np.linalg.norm(left)


def test_plot_writes_png_per_listener(ran, cli, tmp_path):
    d, _ = ran
    proc = cli("plot", d / "result.h5", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("left", "up"):
        png = tmp_path / f"result_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_package_and_cli_import_lightly():
    """`import wavesolve` and the CLI's module load no numerics beyond NumPy (meshes, SciPy,
    plotting, HDF5 and the JIT take about a second to import), so `wavesolve --help` and input
    errors answer at once; the public names still resolve on first use."""
    import subprocess
    import sys

    code = ("import sys, wavesolve, wavesolve.cli; heavy = [m for m in ('trimesh', 'scipy', 'matplotlib', 'h5py', "
            "'numba', 'wavesolve.scene') if m in sys.modules]; print(heavy); "
            "print(wavesolve.load_scene.__module__, wavesolve.simulate.__module__, wavesolve.Result.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "wavesolve.scene wavesolve.api Result"]


def test_info_prints_cost_without_running(ran, cli):
    d, scene = ran
    proc = cli("info", scene)
    assert proc.returncode == 0, proc.stderr
    for word in ("grid", "steps", "memory", "estimate"):
        assert word in proc.stdout
    n = 30 + 2 * DEFAULT_LAYER_CELLS                # 0.3 m / 1 cm = 30 cells, plus the layer on both sides
    nz = -(-n // Z_CELLS_MULTIPLE) * Z_CELLS_MULTIPLE   # along z padded at the top (wavesolve.grid)
    assert f"{n} x {n} x {nz}" in proc.stdout
    assert "fixed box" in proc.stdout and "steps timed" in proc.stdout


def test_info_bounds_the_compute_of_a_chunk_plan(write_scene, cli):
    """`info --chunks N` bounds the chunks' compute (plan.chunked_bound): each chunk runs its window
    plus at most its tail cap, and builds its simulations afresh. A 3-chunk plan of a 207-step scene
    with a 10-step cap: windows of 69 steps, the last one ending with the run, 79 + 79 + 69 = 227
    steps; at 2 ms a step and 0.5 s of set-up per build, 3 × 0.5 + 227 × 0.002 s."""
    from wavesolve.chunks import plan_chunks
    from wavesolve.plan import RunCost, RunEstimate, chunked_bound

    scene = wavesolve.load_scene(write_scene(SCENE))
    plan = plan_chunks(scene, 3, tail_cap=10)
    assert plan.total_steps == 207 and [plan.window(k) for k in range(3)] == [(0, 69), (69, 138), (138, 207)]
    run = RunCost("fixed box", scene.grid.shape, 207, 0, 0.5, 0.002, 24)
    est = RunEstimate(scene.grid.shape, scene.grid.cells, 207, 1.0, 0.5, 0, 1, "numpy", (run,))
    steps, seconds = chunked_bound(est, plan)
    assert steps == 227 and seconds == pytest.approx(3 * 0.5 + 227 * 0.002, rel=1e-12)
    proc = cli("info", scene.path, "--chunks", "3", "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert "compute at most" in proc.stdout and "steps a box, against 207 in one run" in proc.stdout
    assert "objects      1; listeners 2" in proc.stdout


def test_info_counts_the_steps_the_run_takes(write_scene, monkeypatch, cli):
    """A run starts where its shaders first sound (a silent start is skipped); the estimate counts
    the same steps, and info says from which step. It counted the silent start too: 34301 steps
    for bar_drop against the 33615 its run takes. Integers, exact."""
    from wavesolve.plan import estimate

    late = SCENE.replace("frequency = 500.0, amplitude = 10.0 }", "frequency = 2000.0, amplitude = 10.0, delay = 0.0015 }")
    scene = wavesolve.load_scene(write_scene(late))
    built = _spy_on_starts(monkeypatch)
    wavesolve.simulate(scene, backend="numpy", progress=False)
    [(_, start)] = built
    total = scene.grid.steps_for(scene.duration)
    assert 0 < start < total
    assert [run.steps for run in estimate(scene, backend="numpy", sample_steps=8).runs] == [total - start]
    proc = cli("info", scene.path, "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert f"{total - start} steps (from step {start}: none sounds before)" in proc.stdout


def _spy_on_starts(monkeypatch) -> list:
    """(class name, start step) of every Simulation built from now on."""
    from wavesolve.simulation import Simulation

    built, init = [], Simulation.__init__

    def spy(self, *args, start_step: int = 0, **kwargs):
        built.append((type(self).__name__, start_step))
        init(self, *args, start_step=start_step, **kwargs)
    monkeypatch.setattr(Simulation, "__init__", spy)
    return built


class _Clocked:
    """A stand-in for a Simulation whose steps take ``per_step`` seconds on a fake clock, its k-th
    run ``extras[k]`` seconds more (compilation, first calls), for plan.time_steps."""

    def __init__(self, per_step: float, extras: tuple = ()) -> None:
        self.per_step, self.extras, self.clock, self.runs = per_step, extras, 0.0, []

    def _block_runner(self):
        return None

    def run(self, steps: int, progress: bool = False) -> None:
        k = len(self.runs)
        self.runs.append(steps)
        self.clock += steps * self.per_step + (self.extras[k] if k < len(self.extras) else 0.0)


@pytest.mark.parametrize("per_step, extras, most, timed", [
    (1e-3, (), 1024, 512),          # cheap: whole MOTION_BLOCKs, about SAMPLE_SECONDS of them (4 × 128)
    (1e-3, (1.0, 0.5, 0.08), 1024, 512),   # first calls 80 ms slow in the probe too: measured again
    (1e-5, (), 1024, 1024),         # very cheap: at most SAMPLE_STEPS[1]
    (1e-3, (), 300, 256),           # a short run's share: whole blocks within it
    (0.2, (), 1024, 8),             # a large grid's slow step: eight are enough
    (0.03, (), 1024, 17),           # between: about SAMPLE_SECONDS of steps (0.5 s / 30 ms, rounded up)
])
def test_time_steps_sizes_its_sample(monkeypatch, per_step, extras, most, timed):
    """plan.time_steps (the estimate's sampling) times about SAMPLE_SECONDS of steps: a cheap step in
    whole MOTION_BLOCKs (the shaders' accelerations are asked for a block at a time, so a part of a
    block misweighs them), never more than ``most`` (a short run's share) nor SAMPLE_STEPS[1], a slow
    one at least SAMPLE_STEPS[0] times; the seconds it returns are the timed run's alone. (A fake
    clock: the sizing rule, not a speed.)"""
    from wavesolve import plan

    sim = _Clocked(per_step, extras)
    monkeypatch.setattr(plan.time, "perf_counter", lambda: sim.clock)
    seconds, count = plan.time_steps(sim, most=most)
    assert count == timed and sim.runs[-1] == timed
    assert seconds == pytest.approx(timed * per_step, rel=1e-9)
    assert sim.runs[:2] == [2, 8]                   # the warm-up runs come first, untimed


def test_estimate_times_the_simulations_the_run_makes(write_scene, monkeypatch):
    """The time estimate (`wavesolve info`, plan.estimate) times the steps of the simulations the
    run itself makes, each built afresh at the step its sample starts. The rolling-can showcase runs
    only the can's travelling box (its fixed box holds no shader): three samples starting at 1/6, 1/2
    and 5/6 of its 27 441 steps less one sample's length (warm-up and timed steps), so that the last
    ends by the run's last step (past the scene's duration no object's placement was checked), each
    box placed where the can is then. A scene whose objects stay put runs its fixed box, sampled at
    the same three times. The estimate's seconds are the set-up plus the steps
    times the mean seconds a step. (Accounting only: how close the estimate comes to whole runs is
    measured by bench/estimate_accuracy.py, not asserted in a timed test.)"""
    from conftest import SCENES

    from wavesolve.plan import WARM_UP_STEPS, estimate
    from wavesolve.travelling import travellers

    scene = wavesolve.load_scene(SCENES / "showcase" / "rolling_can.toml")
    steps = scene.grid.steps_for(scene.duration)
    built = _spy_on_starts(monkeypatch)
    est = estimate(scene, backend="numpy", sample_steps=8)
    span = steps - WARM_UP_STEPS - 8
    assert built == [("FollowingSimulation", span * k // 6) for k in (1, 3, 5)]
    (run,) = est.runs
    assert run.label == "'can' box" and run.shape == travellers(scene)[0].grid(scene).shape
    assert run.steps == steps and run.sampled_steps == 3 * 8 and run.seconds_per_step > 0
    assert est.seconds == pytest.approx(run.setup_seconds + steps * run.seconds_per_step, rel=1e-12)

    scene = wavesolve.load_scene(write_scene(SCENE))
    steps = scene.grid.steps_for(scene.duration)
    built.clear()
    est = estimate(scene, backend="numpy", sample_steps=8)
    assert built == [("Simulation", (steps - WARM_UP_STEPS - 8) * k // 6) for k in (1, 3, 5)]
    assert [(r.label, r.shape, r.steps, r.sampled_steps) for r in est.runs] == [("fixed box", scene.grid.shape, steps,
                                                                                 3 * 8)]


def test_a_scene_without_shaders_runs_nothing_and_says_so(ran, write_scene, monkeypatch, cli):
    """Objects with no shader are obstacles with no source: linear acoustics makes their field
    exactly zero. The estimate (`wavesolve info`) and the run agree: no simulation is built, the
    result is silence of the scene's length, and info says there is nothing to run."""
    from wavesolve.plan import estimate

    shaderless = SCENE.split("[[objects.shaders]]")[0] + SCENE.split("amplitude = 10.0 }\n")[1]
    path = write_scene(shaderless)
    scene = wavesolve.load_scene(path)
    built = _spy_on_starts(monkeypatch)
    assert estimate(scene, backend="numpy", sample_steps=8).runs == ()
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    assert built == []
    shaded = wavesolve.Result.load(ran[0] / "result.h5")   # the same scene with its shader
    assert result.listener("left").shape == shaded.listener("left").shape
    assert not result.listener("left").any()
    proc = cli("info", str(path), "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to run: no object has a shader" in proc.stdout and "fixed box   not run" not in proc.stdout
    proc = cli("run", str(path), "--backend", "numpy", "--no-progress")
    assert proc.returncode == 0 and "warning: every listener is silent" in proc.stderr


def test_python_api_round_trip(ran, tmp_path):
    d, scene = ran
    result = wavesolve.simulate(wavesolve.load_scene(scene), backend="numpy", progress=False)
    saved = wavesolve.Result.load(result.save(tmp_path / "api.h5"))
    np.testing.assert_array_equal(saved.listener("left"), result.listener("left"))
    assert saved.sample_rate == result.sample_rate
    with pytest.raises(KeyError, match="no listener 'right'"):
        result.listener("right")


def test_unavailable_backend_is_a_clear_error(ran, cli):
    from conftest import _has_gpu

    if _has_gpu():
        pytest.skip("a GPU is present: the cupy backend is available here")
    _, scene = ran
    proc = cli("run", scene, "--backend", "cupy", "--no-progress")
    assert proc.returncode == 2
    assert "backend" in proc.stderr


def test_missing_result_file_for_plot(cli, tmp_path):
    proc = cli("plot", tmp_path / "none.h5")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_runaway_pressure_stops_with_a_clear_message(write_scene, cli, tmp_path):
    """A source 10¹⁵ m/s² strong drives |p| past the 1e8 Pa instability bound: the run stops at the
    next check with exit status 3, says when and where, and leaves no result behind."""
    path = write_scene(SCENE.replace("amplitude = 10.0", "amplitude = 1e15"))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 3, proc.stderr
    assert "unstable" in proc.stderr and "t = " in proc.stderr and "cell" in proc.stderr
    assert not (tmp_path / "result.h5").exists() and not (tmp_path / "sound.wav").exists()


def test_grid_larger_than_memory_is_refused_before_it_runs(write_scene, cli, tmp_path):
    """A 100 m box at h = 1 cm (10 016³ cells, about 8.5 TB in float32) fits no machine: `run` stops
    with exit status 2 before allocating, naming the key, the memory needed and available and the
    fix, and writes nothing; `info` shows both figures and says so."""
    path = write_scene(SCENE.replace("size = 0.3", "size = 100.0"))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "[simulation.cell_size]" in proc.stderr and "GiB available" in proc.stderr
    assert "fix: raise simulation.cell_size" in proc.stderr
    assert not (tmp_path / "result.h5").exists() and not (tmp_path / "sound.wav").exists()
    info = cli("info", path)
    assert info.returncode == 0 and "too large to run here" in info.stdout
    assert "field update only, at a free-field grid's rate: too large to build here" in info.stdout


def test_memory_check_counts_what_the_run_holds(write_scene, monkeypatch):
    """Simulation refuses exactly when the memory it would hold (plan.memory_bytes: fields, layer,
    working space, solid mask) exceeds what the backend reports available; a float64 scene is told
    that float32 halves it."""
    from wavesolve.backend import Backend, resolve_backend
    from wavesolve.errors import SceneError
    from wavesolve.plan import memory_bytes
    from wavesolve.simulation import Simulation

    scene = wavesolve.load_scene(write_scene(SCENE.replace("cell_size = 0.01", "cell_size = 0.01\nprecision = \"float64\"")))
    engine = resolve_backend("numpy")
    need = memory_bytes(scene.grid, 8, engine)
    monkeypatch.setattr(Backend, "available_bytes", lambda self: need)
    Simulation(scene, backend="numpy")                              # exactly enough: runs
    monkeypatch.setattr(Backend, "available_bytes", lambda self: need - 1)
    with pytest.raises(SceneError) as err:
        Simulation(scene, backend="numpy")
    assert err.value.key == "simulation.cell_size" and 'precision = "float32"' in err.value.fix


def test_local_workers_must_fit_together(write_scene, monkeypatch, tmp_path):
    """Time-parallel chunks on local workers run at once on one machine: two workers whose chunks
    fit one at a time but not together are refused before any worker starts, with fewer workers as
    the first fix."""
    from wavesolve.backend import Backend, resolve_backend
    from wavesolve.chunks import plan_chunks
    from wavesolve.errors import SceneError
    from wavesolve.plan import memory_bytes
    from wavesolve.runners import run_chunks

    scene = wavesolve.load_scene(write_scene(SCENE))
    need = memory_bytes(scene.grid, 4, resolve_backend("numpy"))
    monkeypatch.setattr(Backend, "available_bytes", lambda self: int(1.5 * need))
    with pytest.raises(SceneError, match="each of 2 chunks run at once") as err:
        run_chunks(scene, plan_chunks(scene, 2), tmp_path / "parts", workers=2, backend="numpy")
    assert err.value.fix.startswith("use fewer workers")
    assert not list((tmp_path / "parts").glob("*.h5"))


@pytest.mark.parametrize("files, free", [
    ({"memory.max": "8589934592\n", "memory.current": "1073741824\n"}, 7 * 2 ** 30),        # cgroup v2, 8 GiB limit
    ({"memory.max": "max\n", "memory.current": "1073741824\n"}, None),                     # v2, no limit
    ({"memory/memory.limit_in_bytes": "4294967296\n", "memory/memory.usage_in_bytes": "5368709120\n"}, 0),  # v1, over
    ({"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "1\n"}, None),
    ({}, None),                                                                             # no cgroup files
])
def test_container_memory_limit_caps_what_is_available(tmp_path, files, free):
    """Inside a container /proc/meminfo shows the host's memory: the cgroup's limit less its usage is
    what a run can take (cgroup v2 and v1 files; "max" and v1's 2⁶³ − 4096 mean no limit)."""
    from wavesolve.backend import cgroup_free

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_free(tmp_path) == free


def test_outputs_that_cannot_be_written_are_refused_before_the_run(write_scene, cli, tmp_path):
    """Every output is checked before any compute (exit status 2, nothing written, the scene left
    whole): an output that is the scene file itself, two outputs with one path, a directory, a
    path under a file, a directory that cannot take a file; `plot -o` naming a file."""
    path = write_scene(SCENE)
    original = path.read_bytes()
    (tmp_path / "a_dir").mkdir()
    cases = {
        ("-o", path): "is the input file",
        ("-o", tmp_path / "x.h5", "--wav", tmp_path / "x.h5"): "the same file",
        ("-o", tmp_path / "a_dir"): "is a directory",
        ("--wav", path / "x.wav"): "is not a directory",
        ("-o", "/proc/x.h5"): "cannot write",
    }
    for args, message in cases.items():
        proc = cli("run", path, "--no-progress", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert path.read_bytes() == original
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob("*.wav"))
    proc = cli("plot", tmp_path / "none.h5")
    assert proc.returncode == 2
    result = tmp_path / "r.h5"
    assert cli("run", path, "--no-progress", "-o", result, "--wav", tmp_path / "r.wav").returncode == 0
    proc = cli("plot", result, "-o", path)
    assert proc.returncode == 2 and "is a file" in proc.stderr


def test_scene_files_that_are_not_text_or_not_files_are_clear_errors(cli, tmp_path):
    """A binary file and a directory given as the scene: exit status 2 and a message, no traceback."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    for scene, message in ((binary, "not a UTF-8 text file"), (tmp_path, "is a directory")):
        for command in ("run", "info"):
            proc = cli(command, scene)
            assert proc.returncode == 2 and message in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
