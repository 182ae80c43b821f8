"""Far-field listeners (outside the box) against exact sphere solutions, and far-field layout.

A sphere (a = 5 cm, h = 1 cm, box 0.3 m) pulsates or translates along x with a Gaussian-derivative
acceleration (600 Hz); listeners at 1 m and 5 m along x, y, (1, 1, 1) and (1, 0, −1) are estimated
from four samples on the ray from the sphere's centre (p = A(τ)/r + B(τ)/r², τ = t − r/c).
Bound: 5 % relative L2 (the issue's). Measured: pulsating 1.3–1.6 %, translating 1.8–2.4 %, the
same at 1 m and 5 m (the error is the in-box field's, h = 1 cm: the extrapolation adds little).
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import HEMISPHERE_RADIUS
from exact import pulsating_sphere, rel_l2, translating_sphere

import wavesolve
from wavesolve.errors import SceneError
from wavesolve.farfield import delay, layout

DIRECTIONS = {"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0], "diag": [1.0, 1.0, 1.0], "xz": [1.0, 0.0, -1.0]}
RADIUS, C, RHO = 0.05, 343.0, 1.2


def _scene_text(pattern: str) -> str:
    listeners = ""
    for R in (1.0, 5.0):
        for name, d in DIRECTIONS.items():
            d = np.asarray(d) / np.linalg.norm(d) * R
            listeners += f'[[listeners]]\nname = "{name}_{R:g}"\nposition = [{float(d[0])!r}, {float(d[1])!r}, {float(d[2])!r}]\n'
    motion = 'pattern = "translate"\ndirection = [1.0, 0.0, 0.0]' if pattern == "translate" else 'pattern = "pulsate"'
    return f"""
[simulation]
duration = 0.02
sample_rate = 44100.0
cell_size = 0.01
precision = "float64"
[domain]
size = 0.3
[[objects]]
name = "sphere"
mesh = {{ primitive = "icosphere", radius = {RADIUS}, subdivisions = 3 }}
[[objects.shaders]]
type = "prescribed"
{motion}
signal = {{ waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }}
[[listeners]]
name = "inside"
position = [0.12, 0.0, 0.0]
{listeners}"""


@pytest.fixture(scope="module", params=["pulsate", "translate"])
def run(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("far") / "sphere.toml"
    path.write_text(_scene_text(request.param))
    scene = wavesolve.load_scene(path)
    return request.param, scene, wavesolve.simulate(scene, progress=False)


def _compare_with_spheres(pattern, scene, result, radius, on_axis) -> int:
    """Every listener against the exact sphere solution centred at the origin (relative L2 under
    5 %), except where a translating source is silent (cos θ = 0: under 2 % of the peak of the
    listener ``on_axis(name)`` names). Returns how many were compared."""
    alpha = scene.objects[0].shaders[0].signal
    checked = 0
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        R = float(np.linalg.norm(lis.position))
        if pattern == "translate" and lis.position[0] == 0.0:           # cos θ = 0: silent
            loudest = np.max(np.abs(result.listener(on_axis(lis.name))))
            assert np.max(np.abs(p)) < 0.02 * loudest, lis.name
            continue
        if pattern == "pulsate":
            ref = pulsating_sphere(alpha, radius, C, RHO, R, t)
        else:
            ref = translating_sphere(alpha, radius, C, RHO, R, lis.position[0] / R, t)
        assert rel_l2(p, ref) < 0.05, lis.name
        checked += 1
    return checked


def test_far_listeners_match_exact_sphere_solutions(run):
    pattern, scene, result = run
    assert [lis.name for lis in scene.listeners if not lis.far] == ["inside"]
    assert _compare_with_spheres(pattern, scene, result, RADIUS, lambda name: name.replace("y_", "x_")) >= 7
    assert "x_5" in result.metadata["far_field_listeners"]


#: Directions from the floor under the hemisphere: along the floor, 45° up, diagonal, straight up,
#: and sideways 11° up (where the translating source is silent).
GROUND_DIRECTIONS = {"floor": [1.0, 0.0, 0.0], "up45": [1.0, 0.0, 1.0], "diag": [1.0, 1.0, 1.0],
                     "zenith": [0.0, 0.0, 1.0], "side": [0.0, 1.0, 0.2]}


@pytest.fixture(scope="module", params=["pulsate", "translate"])
def ground_run(request, hemisphere):
    """A hemisphere (a = 5 cm) resting on a rigid ground, pulsating or translating along x, in a
    0.3 × 0.3 × 0.16 m box (h = 1 cm); far listeners at 1 m and 5 m in GROUND_DIRECTIONS."""
    text = _scene_text(request.param).replace("size = 0.3", "center = [0.0, 0.0, 0.08]\nsize = [0.3, 0.3, 0.16]\n"
                                              "[ground]\nheight = 0.0")
    text = text.replace('mesh = { primitive = "icosphere", radius = 0.05, subdivisions = 3 }', f'mesh = "{hemisphere}"')
    text = text[:text.index("[[listeners]]")]
    for R in (1.0, 5.0):
        for name, d in GROUND_DIRECTIONS.items():
            d = np.asarray(d) / np.linalg.norm(d) * R
            text += f'[[listeners]]\nname = "{name}_{R:g}"\nposition = [{float(d[0])!r}, {float(d[1])!r}, {float(d[2])!r}]\n'
    scene = wavesolve.load_scene(_write(hemisphere.parent / f"ground_{request.param}.toml", text))
    return request.param, scene, wavesolve.simulate(scene, progress=False)


def _write(path, text):
    path.write_text(text)
    return path


def test_far_listeners_above_a_ground_hear_the_source_and_its_image(ground_run):
    """Above a rigid plane the hemisphere resting on it radiates as the whole sphere does in free
    space (method of images), so far listeners must match the exact sphere solutions, including one
    at floor height (its ray samples between the floor's mirror row and the first row). The ray
    starts on the floor under the object and encloses object and image (wavesolve/farfield.py).
    Bound 5 %, as above. Measured: pulsating 1.5–2.0 %, translating 3.0–3.7 % (the in-box
    field's: 1.7–2.1 % inside the box)."""
    pattern, scene, result = ground_run
    assert all(lis.far for lis in scene.listeners)
    def along_the_floor(name: str) -> str:                 # the loudest direction at that distance
        return "floor_" + name.split("_")[-1]

    assert _compare_with_spheres(pattern, scene, result, HEMISPHERE_RADIUS, along_the_floor) >= 6


def test_fractional_delay_is_accurate():
    t = np.arange(400.0)
    x = np.exp(-(((t - 100) / 15.0) ** 2))
    for steps in (0.0, 3.0, 3.25, 7.9):
        assert np.max(np.abs(delay(x, steps) - np.exp(-(((t - 100 - steps) / 15.0) ** 2)))) < 1e-5


def test_ray_through_another_object_is_refused(write_scene):
    text = _scene_text("pulsate").replace("[[listeners]]\nname = \"inside\"", """[[objects]]
name = "wall"
mesh = { primitive = "box", size = [0.04, 0.2, 0.2] }
position = [0.1, 0.0, 0.0]
[[listeners]]
name = "inside\"""", 1).replace('position = [0.12, 0.0, 0.0]', 'position = [0.0, 0.12, 0.0]')
    with pytest.raises(SceneError, match="passes through or next to object 'wall'"):
        wavesolve.load_scene(write_scene(text))


def test_two_sounding_objects_get_one_group_and_ray_each(write_scene):
    text = _scene_text("pulsate").replace("[[listeners]]\nname = \"inside\"", """[[objects]]
name = "second"
mesh = { primitive = "icosphere", radius = 0.03, subdivisions = 2 }
position = [-0.08, -0.08, 0.0]
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "gaussian_derivative", frequency = 900.0, amplitude = 50.0 }
[[listeners]]
name = "inside\"""", 1)
    scene = wavesolve.load_scene(write_scene(text))
    lay = layout(scene)
    assert lay.groups == ((0,), (1,))
    far = [rays for rays in lay.rays if rays]
    assert all(len(rays) == 2 and {r.group for r in rays} == {0, 1} for rays in far)
    np.testing.assert_allclose(far[0][1].origin, [-0.08, -0.08, 0.0], atol=1e-3)
