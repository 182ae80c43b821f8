"""A shader from outside wavesolve plugs in through the same entry-point group as the built-ins.

The test "installs" a tiny third-party distribution the way pip leaves one on disk — a package plus
a ``.dist-info`` folder whose ``entry_points.txt`` registers the shader under ``wavesolve.shaders``
— on the import path of a fresh ``wavesolve run`` process, and checks that a scene using it runs
and sounds: a pulsating shader with a Gaussian-derivative signal must give the same pressure as the
built-in ``prescribed`` shader with that signal (rounding only: 1e-12 relative L2).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

import wavesolve

PACKAGE = '''
from typing import Literal
import numpy as np
from wavesolve.shading import Shader, ShaderConfig
from wavesolve.signals import GaussianDerivative

class BreathShader(Shader):
    """aₙ = a Gaussian-derivative pulse (frequency, amplitude) on the whole surface."""

    class Config(ShaderConfig):
        type: Literal["breath"]
        frequency: float
        amplitude: float

    def __init__(self, config, context):
        super().__init__(config, context)
        self.pulse = GaussianDerivative(waveform="gaussian_derivative", frequency=config.frequency,
                                        amplitude=config.amplitude)

    def normal_acceleration(self, t, points):
        return np.full(len(points), float(self.pulse(t)))
'''

SCENE = """
[simulation]
duration = 0.002
cell_size = 0.01
precision = "float64"
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.04, subdivisions = 2 }}
[[objects.shaders]]
{shader}
[[listeners]]
name = "ear"
position = [0.1, 0.0, 0.0]
"""


def test_third_party_shader_installs_through_entry_points(tmp_path):
    site = tmp_path / "site"
    (site / "breath_shader").mkdir(parents=True)
    (site / "breath_shader" / "__init__.py").write_text(PACKAGE)
    info = site / "breath_shader-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: breath-shader\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wavesolve.shaders]\nbreath = breath_shader:BreathShader\n")

    third = tmp_path / "third.toml"
    third.write_text(SCENE.format(shader='type = "breath"\nfrequency = 700.0\namplitude = 50.0'))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "wavesolve.cli", "run", str(third), "-o", str(tmp_path / "t.h5"),
                           "--wav", str(tmp_path / "t.wav"), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = wavesolve.Result.load(tmp_path / "t.h5").listener("ear")

    builtin = tmp_path / "builtin.toml"
    builtin.write_text(SCENE.format(shader=textwrap.dedent('''\
        type = "prescribed"
        pattern = "pulsate"
        signal = { waveform = "gaussian_derivative", frequency = 700.0, amplitude = 50.0 }''')))
    want = wavesolve.simulate(wavesolve.load_scene(builtin), progress=False).listener("ear")
    assert np.max(np.abs(want)) > 0
    assert np.linalg.norm(got - want) < 1e-12 * np.linalg.norm(want)


def test_unknown_third_party_shader_is_a_scene_error(tmp_path, cli):
    path = tmp_path / "scene.toml"
    path.write_text(SCENE.format(shader='type = "breath"\nfrequency = 700.0\namplitude = 50.0'))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2 and "unknown shader 'breath'" in proc.stderr and "installed shaders" in proc.stderr
