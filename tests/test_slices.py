"""Pressure slices (``[[slices]]``): recorded where and when asked, equal to the field the
listeners sample, summed over time-parallel chunks, stored and plotted; bad tables refused.

The physics check (a slice through the pulsating sphere against the exact solution) is in
test_validation_spheres.py.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from matplotlib import image

import wavesolve
from wavesolve.chunks import plan_chunks, run_chunk
from wavesolve.errors import SceneError, SceneErrors
from wavesolve.farfield import layout
from wavesolve.scene import parse_scene

BALL = """
[simulation]
duration = 0.003
sample_rate = 44100.0
cell_size = 0.01
precision = "float64"
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.04, subdivisions = 2 }}
[[objects.shaders]]
type = "prescribed"
pattern = "translate"
direction = [1.0, 0.0, 0.0]
signal = {{ waveform = "gaussian_derivative", frequency = 800.0, amplitude = 10.0 }}
[[listeners]]
name = "side"
position = [{x}, {y}, {z}]
[[slices]]
name = "across"
axis = "z"
position = {z}
times = [0.0008, 0.0015, 0.0024]
[[slices]]
name = "along"
axis = "y"
position = 0.03
times = [0.0015]
"""


def _ball(tmp_path, x=0.1, y=0.02, z=0.02):
    path = tmp_path / "ball.toml"
    path.write_text(BALL.format(x=x, y=y, z=z))
    return path


def test_slice_cells_are_the_samples_of_a_listener_there(tmp_path):
    """A listener on a cell centre of a slice's plane samples that cell (trilinear weight 1): the
    slice's value there at each of its times is the listener's step-rate sample at that step,
    bit for bit (float64), so a slice shows the field the run computed, at the time it says."""
    scene = wavesolve.load_scene(_ball(tmp_path))
    grid = scene.grid
    centre = grid.centres(np.rint(grid.fractional_index(np.array([[0.1, 0.02, 0.02]]))))[0]
    scene = wavesolve.load_scene(_ball(tmp_path, *centre))
    plan = plan_chunks(scene, 1)
    out = run_chunk(scene, plan, 0, backend="numba")
    spec = scene.slices[0]
    cell = np.rint(grid.fractional_index(centre[None]))[0].astype(int)
    assert cell[2] == spec.index
    a, b = cell[0] - spec.lo[0], cell[1] - spec.lo[1]
    for i, step in enumerate(spec.steps):
        sample = out.data[0, 0, step - out.start_step]
        assert sample != 0.0
        assert out.slices["across"][i, a, b] == sample


def test_slices_of_chunks_add_up_to_the_whole_run(tmp_path, cli):
    """Chunks each record their own field on the slices and the stitch sums them: two chunks run
    through part files (``run --chunks 2``) against one run. Bound: 1e-3 relative L2, the chunk
    bound of the listener signals (test_chunks.BOUND; what a chunk leaves when it stops quiet).
    ``stitch`` of the same parts gives the same slices."""
    path = _ball(tmp_path)
    whole = wavesolve.simulate(path, progress=False)
    proc = cli("run", path, "--chunks", "2", "-o", tmp_path / "two.h5", "--no-progress", "--keep-parts")
    assert proc.returncode == 0, proc.stderr
    two = wavesolve.Result.load(tmp_path / "two.h5")
    assert two.metadata["chunks"] == 2
    for name in ("across", "along"):
        a, b = whole.pressure_slice(name), two.pressure_slice(name)
        assert np.max(np.abs(a.pressure)) > 0
        for i in range(len(a.times)):
            assert np.linalg.norm(b.pressure[i] - a.pressure[i]) < 1e-3 * np.linalg.norm(a.pressure[i]), (name, i)
        np.testing.assert_array_equal(b.solid, a.solid)
    parts = sorted((tmp_path / "two.h5.parts").glob("part-*.h5"))
    assert len(parts) == 2
    proc = cli("stitch", *parts, "-o", tmp_path / "stitched.h5")
    assert proc.returncode == 0, proc.stderr
    stitched = wavesolve.Result.load(tmp_path / "stitched.h5")
    np.testing.assert_array_equal(stitched.pressure_slice("across").pressure, two.pressure_slice("across").pressure)


def test_result_file_holds_slices_and_plot_draws_them(tmp_path, cli):
    """The result file's slices group (result.py's layout) round-trips through Result.load, and
    ``wavesolve plot`` draws one PNG per slice with the field's colours and the ball in grey."""
    path = _ball(tmp_path)
    result = wavesolve.simulate(path, progress=False)
    result.save(tmp_path / "r.h5")
    sl = result.pressure_slice("along")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        g = f["slices/along"]
        assert g["pressure"].shape == (1, 30, 32) and g["pressure"].attrs["units"] == "Pa"
        assert g.attrs["axis"] == "y" and g["solid"].dtype == bool
        np.testing.assert_allclose(g.attrs["times"], sl.times)
    back = wavesolve.Result.load(tmp_path / "r.h5").pressure_slice("along")
    np.testing.assert_array_equal(back.pressure, sl.pressure)
    np.testing.assert_array_equal(back.solid, sl.solid)
    assert back.extent() == pytest.approx(sl.extent())
    # the plane y = 0.03 cuts the ball (radius 4 cm): some cells are solid, the x extent is the box's
    assert 0 < sl.solid.sum() < sl.solid.size
    assert sl.extent()[:2] == pytest.approx((-0.15, 0.15))
    proc = cli("plot", tmp_path / "r.h5", "-o", tmp_path / "png")
    assert proc.returncode == 0, proc.stderr
    png = image.imread(tmp_path / "png" / "r_slice_across.png")[..., :3]
    red = (png[..., 0] > 0.6) & (png[..., 2] < 0.4)
    blue = (png[..., 2] > 0.6) & (png[..., 0] < 0.4)
    grey = (np.abs(png[..., 0] - 0.55) < 0.02) & (np.ptp(png, axis=-1) < 0.01)
    assert red.sum() > 100 and blue.sum() > 100 and grey.sum() > 100
    with pytest.raises(KeyError, match="no slice 'nope'; slices: across, along"):
        result.pressure_slice("nope")


@pytest.mark.parametrize("table,key,words", [
    ('name = "s"\naxis = "z"\nposition = 0.4\ntimes = [0.001]', "slices[0].position", "outside the box"),
    ('name = "s"\naxis = "z"\nposition = 0.0\ntimes = [0.001, 0.004]', "slices[0].times", "0.004"),
    ('name = "s"\naxis = "w"\nposition = 0.0\ntimes = [0.001]', "slices[0].axis", "'x', 'y' or 'z'"),
    ('name = "s"\naxis = "z"\nposition = 0.0\ntimes = [' + ", ".join(["0.001"] * 17) + "]",
     "slices[0].times", "16"),
    ('name = "a/b"\naxis = "z"\nposition = 0.0\ntimes = [0.001]', "slices[0].name", "/"),
    ('name = "s"\naxis = "z"\nposition = 0.0\ntimes = [0.001]\ncolour = "red"', "slices[0].colour", "colour"),
])
def test_bad_slice_tables_are_refused_naming_the_key(tmp_path, table, key, words):
    text = BALL.format(x=0.1, y=0.0, z=0.0).split("[[slices]]")[0] + "[[slices]]\n" + table + "\n"
    with pytest.raises(SceneErrors) as err:
        parse_scene(text, tmp_path / "bad.toml")
    message = str(err.value)
    assert "bad.toml" in message and key in message and words in message, message


def test_slices_with_a_travelling_box_are_refused_unless_they_move_with_it(tmp_path, cli):
    """A slice of the fixed box would not show the sound of an object in a box of its own: refused
    (exit 2), naming ``object`` as the fix. ``object`` must name such an object, and its position
    (from the point the box follows) must cut that box."""
    text = BALL.format(x=0.1, y=0.0, z=0.0).replace(
        "[[objects.shaders]]", "[objects.domain]\nfollow = true\n[[objects.shaders]]", 1)
    path = tmp_path / "travel.toml"
    path.write_text(text)
    proc = cli("info", path)
    assert proc.returncode == 2
    assert "[slices[0]]" in proc.stderr and 'object = "ball"' in proc.stderr and "follow = false" in proc.stderr
    moving = text.replace('times = [0.0008, 0.0015, 0.0024]', 'times = [0.0008, 0.0015, 0.0024]\nobject = "ball"')
    moving = moving.replace('times = [0.0015]', 'times = [0.0015]\nobject = "ball"')
    scene = parse_scene(moving, tmp_path / "moving.toml")
    assert [s.follows for s in scene.slices] == ["ball", "ball"]
    with pytest.raises(SceneErrors, match=r"slices\[1\]\.object.*'cup', which is not in the scene"):
        parse_scene(moving.replace('times = [0.0015]\nobject = "ball"', 'times = [0.0015]\nobject = "cup"'),
                    tmp_path / "bad.toml")
    with pytest.raises(SceneError, match=r"slices\[1\]\.position.*outside the box"):
        parse_scene(moving.replace("position = 0.03", "position = 0.5"), tmp_path / "far.toml")
    fixed = BALL.format(x=0.1, y=0.0, z=0.0).replace('times = [0.0015]', 'times = [0.0015]\nobject = "ball"')
    with pytest.raises(SceneErrors, match=r"slices\[1\]\.object.*does not travel in a box of its own"):
        parse_scene(fixed, tmp_path / "fixed.toml")


@pytest.mark.parametrize("backend", ["numba", pytest.param("cupy", marks=pytest.mark.gpu)])
def test_slices_are_the_same_on_every_backend(tmp_path, backend):
    """The fast backends' slices against the NumPy reference's, float64: to 1e-10 of the largest
    pressure (the bound test_kernels_cuda uses for whole float64 runs on the GPU; on the CPU the
    compiled step differs from the reference by rounding alone)."""
    path = _ball(tmp_path)
    ref = wavesolve.simulate(path, backend="numpy", progress=False)
    fast = wavesolve.simulate(path, backend=backend, progress=False)
    assert fast.metadata["backend"] == backend
    for name in ("across", "along"):
        a, b = ref.pressure_slice(name).pressure, fast.pressure_slice(name).pressure
        assert np.max(np.abs(a)) > 0
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.max(np.abs(a)))


def test_info_lists_the_slices(tmp_path, cli):
    """``wavesolve info`` says where each slice lies (the cell plane taken) and when."""
    proc = cli("info", _ball(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "slice        'across': z = 0.015 m, 30 x 30 cells at 0.8017, 1.501, 2.405 ms" in proc.stdout
    assert "slice        'along': y = 0.035 m, 30 x 32 cells at 1.501 ms" in proc.stdout


def test_slices_of_source_groups_add_up(tmp_path):
    """With a far-field listener and two sounding objects, each object's shaders run alone (one
    source group a run, wavesolve.farfield) and the slices are their sum; without it both sound in
    one run. The field is linear in the shaders, so the two agree to rounding (1e-12 of the
    largest pressure, float64)."""
    two = BALL.format(x=0.1, y=0.0, z=0.0).replace(
        "[[listeners]]", '[[objects]]\nname = "other"\nmesh = { primitive = "icosphere", radius = 0.03, '
        'subdivisions = 2 }\nposition = [-0.08, 0.05, 0.0]\n[[objects.shaders]]\ntype = "prescribed"\n'
        'pattern = "pulsate"\nsignal = { waveform = "sine_burst", frequency = 1200.0, amplitude = 20.0, '
        "cycles = 3 }\n[[listeners]]", 1)
    joint = wavesolve.simulate(parse_scene(two, tmp_path / "joint.toml"), progress=False)
    far = parse_scene(two + '[[listeners]]\nname = "far"\nposition = [2.0, 0.0, 0.0]\n', tmp_path / "far.toml")
    assert len(layout(far).groups) == 2
    split = wavesolve.simulate(far, progress=False)
    for name in ("across", "along"):
        a, b = joint.pressure_slice(name).pressure, split.pressure_slice(name).pressure
        assert np.max(np.abs(a)) > 0
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * np.max(np.abs(a)))
