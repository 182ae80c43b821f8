"""Make the meshes, impact lists and signals of the rigid-body showcase scenes (run from anywhere).

    python3 scenes/showcase/make_showcase.py

writes, beside this script:
  bar.obj, bar_hits.csv      steel bar 0.2 × 0.02 × 0.01 m (surface refined to 1 cm so that mode
                             shapes interpolate well) and the impacts of a drop: one end lands, then
                             the other, then two smaller bounces
  bowl.obj, bowl_hits.csv    ceramic bowl (radius 6 cm, 6 mm wall, a foot ring), struck on its rim
                             three times while it stands on a table
  chirp.wav                  0.25 s chirp 200 Hz → 4 kHz (m/s², float WAV at 48 kHz) for the speaker

The scenes compute their modes on first load (the modal shader's FEM, cached in
~/.cache/wavesolve/modes); `wavesolve modal` writes the same modes to a file if you prefer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from scipy.io import wavfile

HERE = Path(__file__).resolve().parent


def bar() -> None:
    mesh = trimesh.creation.box(extents=[0.2, 0.02, 0.01])
    v, f = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=0.01)
    mesh = trimesh.Trimesh(v, f, process=True)
    mesh.export(HERE / "bar.obj")
    # a drop from about 5 cm, slightly tilted: end −x lands at 1.0 m/s, then end +x, then bounces.
    # Impulses on the bar (object frame = world frame here: the bar lies along x, 1 cm thick in z).
    rows = [
        (0.005, -0.1, 0.0, -0.005, 0.0, 0.0, 0.030, 1.0),
        (0.021, 0.1, 0.0, -0.005, 0.0, 0.0, 0.024, 0.8),
        (0.085, -0.1, 0.0, -0.005, 0.0, 0.0, 0.010, 0.35),
        (0.110, 0.1, 0.0, -0.005, 0.0, 0.0, 0.007, 0.25),
    ]
    _csv(HERE / "bar_hits.csv", rows)


def bowl() -> None:
    # profile (r, z) of a bowl wall with a foot ring, counter-clockwise, revolved about z
    outer = [(0.0, 0.0), (0.025, 0.0), (0.027, 0.006), (0.045, 0.012), (0.057, 0.028), (0.060, 0.045)]
    inner = [(0.054, 0.045), (0.052, 0.031), (0.041, 0.017), (0.024, 0.011), (0.0, 0.010)]
    profile = np.array(outer + inner)
    mesh = trimesh.creation.revolve(profile, sections=48)
    mesh.merge_vertices()
    mesh.fix_normals()
    assert mesh.is_watertight and mesh.volume > 0
    mesh.export(HERE / "bowl.obj")
    rows = [  # struck on the rim with a spoon (steel), downward and inward
        (0.005, 0.060, 0.0, 0.045, -0.004, 0.0, -0.002, 0.6),
        (0.120, 0.0, 0.060, 0.045, 0.0, -0.003, -0.0015, 0.45),
        (0.240, -0.060, 0.0, 0.045, 0.002, 0.0, -0.001, 0.3),
    ]
    _csv(HERE / "bowl_hits.csv", rows)


def chirp() -> None:
    fs, dur = 48000, 0.25
    t = np.arange(int(fs * dur)) / fs
    f0, f1 = 200.0, 4000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t * t)
    fade = np.minimum(1.0, np.minimum(t, dur - t) / 0.01)  # 10 ms fades
    wavfile.write(HERE / "chirp.wav", fs, (np.sin(phase) * fade).astype(np.float32))


def _csv(path: Path, rows) -> None:
    lines = ["time,x,y,z,jx,jy,jz,speed"] + [",".join(f"{v:g}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    bar()
    bowl()
    chirp()
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix in (".obj", ".csv", ".wav"))))
