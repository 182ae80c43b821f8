"""A rigidly accelerated body displaces no volume, so its sound has no monopole.

Physics: a rigid body's surface velocity v + ω × (x − x_c) has zero net flux (∮ n dS = 0,
∮ (x − x_c) × n dS = 0), so the field of a struck body holds no l = 0 term; a body symmetric under
inversion (sphere, cube) translating radiates only odd multipoles. Measure: six listeners on the
axes, r = 8 cm around the body, low-passed below 1 kHz (ka ≤ 0.23 for these 2 cm bodies, where a
spurious monopole outgrows the dipole by 1/(ka)): the mean of the six (l = 0; l = 2 cancels in
it, l ≥ 4 is O((ka)⁴)) against the antisymmetric part along the impulse (l = 1). The body's
centre is 1.9 mm off the listeners' centre, which alone gives an even part of about 2 % of the
odd one (offset/r). Bound 0.1: the requirement that the spurious monopole stay 20 dB under the
dipole (bench/RESULTS.md, thirtieth session, lists the measured ratios for h = 2–6 mm).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

import wavesolve
from wavesolve.scene import Scene, parse_scene

AXES = {"xp": (1, 0, 0), "xm": (-1, 0, 0), "yp": (0, 1, 0), "ym": (0, -1, 0), "zp": (0, 0, 1), "zm": (0, 0, -1)}
MESHES = {"sphere": '{ primitive = "icosphere", radius = 0.0124, subdivisions = 4 }',   # the cube's volume
          "cube": '{ primitive = "box", size = [0.02, 0.02, 0.02] }'}


def _struck(shape: str, h: float, contact: float, listeners: dict[str, tuple[float, float, float]],
            extra: str = "") -> Scene:
    """`shape` (MESHES), centred 1.9 mm off the origin, struck along +x at x = −`contact` (m; through
    its centre: no spin) by 2 mN·s, heard at `listeners` (name: position, m); cell size h (m);
    ``extra``: more shader tables of the body."""
    heard = "".join(f'[[listeners]]\nname = "{name}"\nposition = [{x}, {y}, {z}]\n'
                    for name, (x, y, z) in listeners.items())
    return parse_scene(f"""
[simulation]
duration = 0.004
cell_size = {h}
precision = "float64"
[domain]
size = 0.24
[[objects]]
name = "body"
mesh = {MESHES[shape]}
position = [0.0013, 0.0007, -0.0011]
[[objects.shaders]]
type = "acceleration_noise"
material = "abs"
impacts = [ {{ time = 0.0005, position = [{-contact}, 0.0, 0.0], impulse = [0.002, 0.0, 0.0], speed = 1.0 }} ]
{extra}
{heard}""", f"{shape}.toml")


def _even_to_odd(shape: str, h: float, contact: float) -> float:
    """RMS below 1 kHz of the six axis listeners' mean over that of their x-antisymmetric part, for
    :func:`_struck` `shape`."""
    scene = _struck(shape, h, contact, {name: tuple(0.08 * c for c in u) for name, u in AXES.items()})
    result = wavesolve.simulate(scene, backend="numba", progress=False)
    sos = butter(4, 1000.0, fs=result.sample_rate, output="sos")
    p = {name: sosfiltfilt(sos, result.listener(name)) for name in AXES}
    even = sum(p.values()) / len(p)
    odd = (p["xp"] - p["xm"]) / 2
    return float(np.sqrt(np.mean(even ** 2)) / np.sqrt(np.mean(odd ** 2)))


def test_a_struck_sphere_radiates_no_monopole():
    """Sphere a = 12.4 mm at h = 3 mm (8 cells across): measured 0.004 (0.003 at h = 6 and 4 mm);
    0.051 (0.11, 0.13, 0.006 at h = 6, 4, 2 mm) before the volume balance."""
    assert _even_to_odd("sphere", 0.003, 0.0124) < 0.1


def test_a_struck_cube_radiates_no_monopole():
    """A 2 cm cube, faces on the grid's axes, at h = 4 mm: measured 0.006 (0.011, 0.004, 0.006 at
    h = 6, 3, 2 mm). Without the volume balance of sounding objects
    (wavesolve/flux_balance.py) it was 0.40 (0.93, 0.05, 0.44): the ghost cells' face flux errs at
    first order with one sign across a grid-aligned face, and edge cells set by the side face carry
    the struck face's flux with the wrong sign (bench/RESULTS.md, thirtieth session)."""
    assert _even_to_odd("cube", 0.004, 0.01) < 0.1


PULSATE = ('[[objects.shaders]]\ntype = "prescribed"\npattern = "pulsate"\n'
           'signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 1.0 }')


@pytest.mark.parametrize("h, elastic, warned", [(0.006, True, True), (0.004, True, False), (0.006, False, False)])
def test_a_sounding_object_under_five_cells_is_warned_about(caplog, h, elastic, warned):
    """A 2 cm cube with a `prescribed` shader besides its clicks, which does not know its net volume
    (so the object's net flux is not balanced): 3.3
    cells at h = 6 mm, where the leak of such a box made the dice showcase's clicks 1.5× too loud
    below 3 kHz before the volume balance, is named at load with the cell size that resolves it by
    5; at 4 mm, nothing. With clicks alone (balanced) it is not named: the balanced dice at 6 mm
    came within 5 % of 3 mm above 1 kHz (bench/RESULTS.md, thirty-first session)."""
    with caplog.at_level("WARNING", logger="wavesolve"):
        _struck("cube", h, 0.01, {"ear": (0.04, 0.0, 0.0)}, PULSATE if elastic else "")
    messages = [r.getMessage() for r in caplog.records if "cells across" in r.getMessage()]
    if warned:
        assert len(messages) == 1 and "objects[0].mesh" in messages[0] and "3.3 cells" in messages[0]
        assert "0.004 m or less" in messages[0]
    else:
        assert messages == []
