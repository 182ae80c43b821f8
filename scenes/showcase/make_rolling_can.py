"""Make the path of the travelling-source showcase (run from anywhere).

    python3 scenes/showcase/make_rolling_can.py

writes rolling_can_path.csv beside this script: keyframes (time,x,y,z,qw,qx,qy,qz) of a can
(radius 3.3 cm) rolling without slipping along x at 15 m/s for 0.4 s (6 m) on a ground at z = 0:
lying on its side (its own z axis turned onto world −y), its centre GAP above a radius from the
floor, turning about world y at v/r rad/s. Keyframes every 2 ms keep the rotation between two
frames under 1 rad, so the rotation spline cannot take the short way round.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

HERE = Path(__file__).resolve().parent
SPEED, RADIUS, DURATION, START = 15.0, 0.033, 0.4, -3.0
#: m between the floor and the can's circle: a twentieth of the 1 cm cell, as the physics showcases
#: leave under a resting body (README, "Physics showcases"); the mesh's polygon stays above it
GAP = 0.0005


def main() -> None:
    t = np.arange(0.0, DURATION + 1e-9, 0.002)
    roll = SPEED * t / RADIUS                        # rolling toward +x on a floor below: ω = v/r about +y
    lie = Rotation.from_euler("x", 90.0, degrees=True)          # the can's axis (object z) onto world −y
    q = (Rotation.from_euler("y", roll[:, None]) * lie).as_quat()        # x, y, z, w
    rows = np.column_stack([t, START + SPEED * t, np.zeros_like(t), np.full_like(t, RADIUS + GAP),
                            q[:, 3], q[:, 0], q[:, 1], q[:, 2]])
    np.savetxt(HERE / "rolling_can_path.csv", rows, delimiter=",", header="time,x,y,z,qw,qx,qy,qz",
               comments="", fmt="%.9g")


if __name__ == "__main__":
    main()
