"""Make the meshes of the cymbal showcase (run from anywhere).

    python3 scenes/showcase/make_cymbal.py

writes, beside this script:
  cymbal_mid.obj   mid-surface of a 13-inch cymbal (radius 16 cm, 6.5 mm centre hole, a bell of
                   radius 5 cm rising 2.4 cm, a bow dropping 1.2 cm to the edge), 28 rings of
                   nearly equilateral triangles (about 5.7 mm); the shell shader's modes use it with
                   the physical thickness given in the scene (1 mm)
  cymbal.obj       the closed solid the acoustic grid sees: the mid-surface thickened to 12 mm
                   (1.2 cells of the scene's 1 cm grid; a 1 mm plate would be invisible to it)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from wavesolve.shell_mesh import disk_mesh, thicken

HERE = Path(__file__).resolve().parent
RADIUS = 0.16          # m
HOLE = 0.0065          # m
BELL_RADIUS = 0.05     # m
BELL_HEIGHT = 0.024    # m
BOW_DROP = 0.012       # m, from the bell's foot to the edge
RINGS = 28
ACOUSTIC_THICKNESS = 0.012   # m


def profile(r: np.ndarray) -> np.ndarray:
    """Height z(r) (m) of the mid-surface: a smooth bell on a shallow bow."""
    s = np.clip(r / BELL_RADIUS, 0.0, 1.0)
    bell = BELL_HEIGHT * (1.0 - s * s) ** 2
    bow = -BOW_DROP * np.clip((r - BELL_RADIUS) / (RADIUS - BELL_RADIUS), 0.0, 1.0) ** 1.5
    return bell + bow


def main() -> None:
    mid = disk_mesh(RADIUS, RINGS, inner_radius=HOLE, height=profile)
    closed, _ = thicken(mid, ACOUSTIC_THICKNESS)
    assert closed.is_watertight and closed.volume > 0
    mid.export(HERE / "cymbal_mid.obj")
    closed.export(HERE / "cymbal.obj")
    print(f"cymbal_mid.obj: {len(mid.vertices)} vertices; cymbal.obj: {len(closed.vertices)} vertices, "
          f"{ACOUSTIC_THICKNESS * 1000:g} mm thick")


if __name__ == "__main__":
    main()
