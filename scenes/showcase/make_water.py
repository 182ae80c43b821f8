"""Make the water body and bubble events of the water showcase (run from anywhere).

    python3 scenes/showcase/make_water.py

writes, beside this script:
  water.obj          the water in bowl.obj (make_showcase.py's ceramic bowl), filled to z = 3 cm:
                     the bowl's inner wall revolved, 1 mm into the wall so that no air gap is left,
                     closed by the flat free surface (a disc of radius 5.1 cm)
  water_drops.csv    the bubbles of one larger drop that entrains two bubbles at once (time,x,y,z,
                     radius,amplitude), beside the single-bubble drops that the scene draws from the
                     `dripping` model

The bowl's own mesh is made by make_showcase.py (bowl.obj is kept in the repository).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

HERE = Path(__file__).resolve().parent
#: the inner wall of bowl.obj, (r, z) from the centre of its floor to the rim (make_showcase.py)
BOWL_INNER = [(0.0, 0.010), (0.024, 0.011), (0.041, 0.017), (0.052, 0.031), (0.054, 0.045)]
#: water level (m, bowl frame) and how far the water reaches into the wall (m)
LEVEL = 0.030
INTO_WALL = 0.001


def inner_radius(z: float) -> float:
    """Radius (m) of the bowl's inner wall at height z (linear between profile points)."""
    r, zz = zip(*BOWL_INNER[1:])
    return float(np.interp(z, zz, r))


def water() -> trimesh.Trimesh:
    """The water body: revolved inner profile up to LEVEL, pushed INTO_WALL into the wall, flat top."""
    wall = [(r + INTO_WALL, z - INTO_WALL) for r, z in BOWL_INNER[1:] if z < LEVEL]
    profile = np.array([(0.0, BOWL_INNER[0][1] - INTO_WALL)] + wall
                       + [(inner_radius(LEVEL) + INTO_WALL, LEVEL), (0.0, LEVEL)])
    mesh = trimesh.creation.revolve(profile, sections=64)
    mesh.merge_vertices()
    mesh.fix_normals()
    assert mesh.is_watertight and mesh.volume > 0
    top = mesh.face_normals[:, 2] > 0.5
    assert np.allclose(mesh.triangles_center[top][:, 2], LEVEL)  # the free surface is the flat top
    return mesh


def drop_bubbles() -> list[tuple[float, ...]]:
    """A larger drop at 0.33 s entraining two bubbles (time, x, y, z, radius, amplitude)."""
    return [(0.330, -0.012, 0.008, LEVEL - 0.006, 0.0028, 0.012),
            (0.334, -0.010, 0.011, LEVEL - 0.004, 0.0014, 0.008)]


if __name__ == "__main__":
    water().export(HERE / "water.obj")
    rows = ["time,x,y,z,radius,amplitude"] + [",".join(f"{v:g}" for v in row) for row in drop_bubbles()]
    (HERE / "water_drops.csv").write_text("\n".join(rows) + "\n")
    print("wrote water.obj, water_drops.csv")
