"""How quiet a box goes after a click: the discrete field energy of a run, every 100 steps.

    python3 bench/moving_box_energy.py [--cases can,can_translate,...] [--backend numba]

Each case is a short scene (h = 1 cm, float32 unless said): one click (a Gaussian derivative,
2.5 kHz unless said) from an object at t ≈ 0, shaders off after 20 ms, run for 27 × 100 steps.
It prints the leapfrog's discrete energy over the whole grid (``wavesolve.energy``) as a fraction
of its peak. A box that lets the sound go falls far below 1e-4 within 10 ms (a fixed box, or a
travelling box at rest); the travelling boxes of moving objects do not (bench/RESULTS.md,
twenty-second session). It also prints the net volume flux out of the box's interior once the
click has gone (``Simulation.outflow``), which is zero at rest and is not for a moving object: the
steady flow of a volume leak (twenty-third session); and how far the layer's split pressures exceed
the field: pairs that cancel, which a moving box's shifts carry to where they no longer do.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wavesolve.energy import leapfrog_energy  # noqa: E402
from wavesolve.following import _slab_views  # noqa: E402
from wavesolve.scene import parse_scene  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402
from wavesolve.travelling import travellers  # noqa: E402

SCENE = """
[simulation]
duration = {duration}
cell_size = 0.01
precision = "{precision}"
boundary_interval = {interval}
[domain]
{domain}
[[objects]]
name = "thing"
mesh = {mesh}
{motion}
[objects.domain]
follow = {follow}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "{waveform}", frequency = {frequency}, amplitude = 200.0 }}
[[listeners]]
name = "kerb"
position = [0.0, {listener_y}, 0.0]
"""

CAN = '{ primitive = "cylinder", radius = 0.033, height = 0.12 }'
SPHERE = '{ primitive = "icosphere", radius = 0.05, subdivisions = 3 }'
TRANSLATE = 'motion = { type = "constant_velocity", velocity = [15.0, 0.0, 0.0] }\nposition = [-0.3, 0.0, 0.0]'
# the showcase's path (since the thirty-third session a can lying on its side, rolling on a ground; here
# in free air, where its 3.4 cm height does not matter)
ROLL = ('motion = { type = "keyframes", file = "' + str(REPO / "scenes" / "showcase" / "rolling_can_path.csv")
        + '" }')
TRAVEL = {"domain": "size = 0.2", "follow": "true", "listener_y": 0.6}

CASES = {
    "can": dict(mesh=CAN, motion=ROLL, **TRAVEL),
    "can_translate": dict(mesh=CAN, motion=TRANSLATE, **TRAVEL),
    "can_float64": dict(mesh=CAN, motion=ROLL, precision="float64", **TRAVEL),
    "can_exact_boundary": dict(mesh=CAN, motion=TRANSLATE, interval=1, **TRAVEL),
    "can_800hz": dict(mesh=CAN, motion=TRANSLATE, frequency=800.0, **TRAVEL),
    "can_fixed_box": dict(mesh=CAN, motion=TRANSLATE, domain="size = [0.9, 0.4, 0.4]\ncenter = [-0.05, 0.0, 0.0]",
                          follow="false", listener_y=0.15),
    "can_at_rest": dict(mesh=CAN, motion=TRANSLATE.replace("15.0", "0.0"), **TRAVEL),
    "sphere": dict(mesh=SPHERE, motion=TRANSLATE, **TRAVEL),
    "can_ricker": dict(mesh=CAN, motion=ROLL, waveform="ricker", **TRAVEL),
    "sphere_ricker": dict(mesh=SPHERE, motion=TRANSLATE, waveform="ricker", **TRAVEL),
}


def energy_trace(case: str, backend: str, blocks: int = 27, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Energy after every ``steps`` steps, as a fraction of its largest value; the net volume flux
    out of the interior (``Simulation.outflow``, m³/s) every ``steps // 10`` steps; and the layer's
    largest split pressure every ``steps`` steps, as a fraction of the largest |p| seen."""
    spec = {"duration": 0.04, "precision": "float32", "interval": 32, "frequency": 2500.0,
            "waveform": "gaussian_derivative", **CASES[case]}
    scene = parse_scene(SCENE.format(**spec), REPO / "bench" / f"{case}.toml")
    window = (0, int(0.02 / scene.grid.dt))
    if scene.travellers:
        sim = travellers(scene)[0].simulation(scene, backend, shader_window=window)
    else:
        sim = Simulation(scene, backend=backend, shader_window=window)
    energy, flux, split, peak = [], [], [], 0.0
    for _ in range(blocks):
        for _ in range(10):
            sim.run(steps // 10, progress=False)
            flux.append(sim.outflow())
            peak = max(peak, float(np.abs(sim.p).max()))
        energy.append(leapfrog_energy(sim.p, sim.p_prev, scene.grid.courant))
        split.append(largest_split(sim))
    return np.asarray(energy) / max(energy), np.asarray(flux), np.asarray(split) / peak


def largest_split(sim: Simulation) -> float:
    """The layer's largest split pressure (a stored slot or the rest of p, Pa)."""
    largest = 0.0
    for slab in _slab_views(sim.layer, *sim.layer_buffers()):
        s0, s1 = slab.p_split
        rest = sim.p[slab.cells] - s0 - s1
        largest = max(largest, *(float(np.abs(x).max()) for x in (s0, s1, rest)))
    return largest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--backend", default="numba")
    args = ap.parse_args()
    for case in args.cases.split(","):
        trace, flux, split = energy_trace(case, args.backend)
        steady = flux[50:150].mean()        # 7-22 ms: the sound has left, the shaders still on
        print(f"{case:<20} 2.9/4.4 ms {trace[1]:.1e} / {trace[2]:.1e}; 7-25 ms {trace[4:17].min():.1e} - "
              f"{trace[4:17].max():.1e}; 26-38 ms max {trace[17:].max():.1e}; volume flux 7-22 ms "
              f"{steady:+.1e} m³/s = {steady / np.abs(flux).max():+.1e} of its peak; largest split pressure "
              f"at 19 ms {split[12]:.1e} of the peak |p|")
        print("  " + np.array2string(trace, precision=1, max_line_width=120).replace("\n", "\n  "))


if __name__ == "__main__":
    main()
