"""Bad input: every problem is reported before compute, naming file, key and fix; exit status 2;
no output file left behind."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

import wavesolve
from wavesolve.errors import SceneError

GOOD = """
[simulation]
duration = 0.001
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
name = "ear"
position = [0.1, 0.0, 0.0]
[output]
hdf5 = "out.h5"
wav = "out.wav"
"""

# (replace this, with that, expected key in the message, a phrase of the message)
CASES = {
    "unknown key with did-you-mean": ("cell_size = 0.01", "cell_size = 0.01\nduraton = 2.0",
                                      "simulation.duraton", "did you mean 'duration'"),
    "a name with '/' (it would name a nested group in the result file)": (
        'name = "ball"', 'name = "ball/left"', "objects[0].name", "a name without '/'"),
    "wrong type": ("cell_size = 0.01", 'cell_size = "fine"', "simulation.cell_size", "valid number"),
    "missing key": ("duration = 0.001\n", "", "simulation.duration", "required key is missing"),
    "missing mesh file": ('mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }',
                          'mesh = "no_such_bowl.obj"', "objects[0].mesh", "does not exist"),
    "courant too large": ("cell_size = 0.01", "cell_size = 0.01\ncourant = 0.6",
                          "simulation.courant", "stability limit"),
    "object outside the box": ('name = "ball"', 'name = "ball"\nposition = [0.13, 0.0, 0.0]',
                               "objects[0].position", "enlarge domain.size"),
    "far listener without a source": (
        '[[objects.shaders]]\ntype = "prescribed"\npattern = "pulsate"\n'
        'signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }\n'
        '[[listeners]]\nname = "ear"\nposition = [0.1, 0.0, 0.0]',
        '[[listeners]]\nname = "ear"\nposition = [1.0, 0.0, 0.0]',
        "listeners[0].position", "needs an object with shaders"),
    "listener inside an object": ("position = [0.1, 0.0, 0.0]", "position = [0.01, 0.0, 0.0]",
                                  "listeners[0].position", "inside or on object"),
    "unknown shader": ('type = "prescribed"', 'type = "prescibed"', "objects[0].shaders[0].type",
                       "did you mean 'prescribed'"),
    "unknown waveform": ('waveform = "gaussian_derivative"', 'waveform = "gauss"',
                         "objects[0].shaders[0].signal.waveform", "unknown waveform"),
    "translate without direction": ('pattern = "pulsate"', 'pattern = "translate"',
                                    "objects[0].shaders[0].direction", "needs a direction"),
    "zero quaternion": ('name = "ball"', 'name = "ball"\norientation = [0.0, 0.0, 0.0, 0.0]',
                        "objects[0].orientation", "zero length"),
    "unknown primitive": ('primitive = "icosphere"', 'primitive = "ball"', "objects[0].mesh.primitive",
                          "unknown primitive"),
    "duplicate listener": ('[output]', '[[listeners]]\nname = "ear"\nposition = [0.0, 0.1, 0.0]\n[output]',
                           "listeners[1].name", "already used"),
    "invalid TOML": ("[domain]", "[domain", "", "not valid TOML"),
    "bad value inside a pulse train": (
        'signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }',
        'signal = { waveform = "pulse_train", times = [0.0], '
        'pulse = { waveform = "ricker", frequency = -5.0, amplitude = 10.0 } }',
        "objects[0].shaders[0].signal.pulse.frequency", "greater than 0"),
    "unknown key inside a pulse train": (
        'signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }',
        'signal = { waveform = "pulse_train", times = [0.0], '
        'pulse = { waveform = "sine_burst", frequency = 500.0, amplitude = 10.0, cycle = 3 } }',
        "objects[0].shaders[0].signal.pulse.cycle", "did you mean 'cycles'"),
    "boundary interval zero": ("cell_size = 0.01", "cell_size = 0.01\nboundary_interval = 0",
                               "simulation.boundary_interval", "greater than or equal to 1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_scene_exits_2_with_named_key(case, write_scene, cli, tmp_path):
    old, new, key, phrase = CASES[case]
    assert old in GOOD
    path = write_scene(GOOD.replace(old, new, 1))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr
    if key:
        assert f"[{key}]" in proc.stderr
    assert phrase in proc.stderr
    assert "fix:" in proc.stderr or case == "invalid TOML"
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.wav").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_several_problems_reported_together(write_scene, cli):
    text = GOOD.replace("cell_size = 0.01", "cell_size = 0.01\ncourant = 0.7").replace(
        "position = [0.1, 0.0, 0.0]", "position = [0.01, 0.0, 0.0]")
    path = write_scene(text)
    with pytest.raises(SceneError) as info:
        wavesolve.load_scene(path)
    message = str(info.value)
    assert "[simulation.courant]" in message and "[listeners[0].position]" in message
    proc = cli("info", path)                       # each problem on its own error line
    lines = [line for line in proc.stderr.splitlines() if line.startswith("wavesolve: error: ")]
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr


def test_a_misspelt_required_key_is_one_error(write_scene):
    """'duraton' for the required 'duration' is one mistake: the unknown key's did-you-mean names
    it, and no second 'required key is missing' error is listed for 'duration'; a key that is
    missing with no near spelling still is."""
    text = GOOD.replace("duration = 0.001", "duraton = 0.001").replace("cell_size = 0.01\n", "")
    with pytest.raises(SceneError) as info:
        wavesolve.load_scene(write_scene(text))
    message = str(info.value)
    assert "[simulation.duraton] unknown key 'duraton' — did you mean 'duration'?" in message
    assert "[simulation.duration]" not in message
    assert "[simulation.cell_size] required key is missing" in message


def test_integer_signal_wav_is_rejected(write_scene, tmp_path):
    wavfile.write(tmp_path / "accel.wav", 48000, (np.zeros(100)).astype(np.int16))
    text = GOOD.replace('signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }',
                        'signal = { file = "accel.wav" }')
    with pytest.raises(SceneError) as info:
        wavesolve.load_scene(write_scene(text))
    assert info.value.key == "objects[0].shaders[0].signal.file"
    assert "float" in str(info.value)


def test_missing_scene_file(cli, tmp_path):
    proc = cli("run", tmp_path / "nope.toml")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_good_scene_loads(write_scene):
    scene = wavesolve.load_scene(write_scene(GOOD))
    assert scene.grid.courant == pytest.approx(0.5)
    assert [lis.name for lis in scene.listeners] == ["ear"]


@pytest.mark.parametrize("mesh, phrase", [
    ('"triangle.obj"', "its mesh is not closed"),
    ('{ primitive = "icosphere", radius = 0.002, subdivisions = 2 }', "it is thinner than a cell")])
def test_a_sounding_object_that_covers_no_cell_is_refused(mesh, phrase, write_scene, cli, tmp_path):
    """An object whose shaders would push air but inside which no cell centre lies (an open mesh, or a
    solid smaller than a cell: a 2 mm ball at h = 1 cm) has no boundary cells: the run would write
    silence. It is refused, exit 2, naming the object's mesh key and the fix, with nothing written.
    (An open one-triangle mesh used to warn "not watertight" and then write silence.)"""
    (tmp_path / "triangle.obj").write_text("v 0 0 0\nv 0.05 0 0\nv 0 0.05 0\nf 1 2 3\n")
    path = write_scene(GOOD.replace('{ primitive = "icosphere", radius = 0.04, subdivisions = 2 }', mesh))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "[objects[0].mesh]" in proc.stderr and "covers no cell centre at h = 0.01 m" in proc.stderr
    assert phrase in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.wav").exists()
