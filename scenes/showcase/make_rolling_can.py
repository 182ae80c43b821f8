"""Make the path of the travelling-source showcase (run from anywhere).

    python3 scenes/showcase/make_rolling_can.py

writes rolling_can_path.csv beside this script: keyframes (time,x,y,z,qw,qx,qy,qz) of a can
(radius 3.3 cm) flung along x at 15 m/s for 0.4 s (6 m), rolling about its own axis (the object's
z axis, kept along world z) at v/r rad/s as if it rolled on a surface below it. Keyframes every
2 ms keep the rotation between two frames under 1 rad, so the rotation spline cannot take the
short way round.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPEED, RADIUS, DURATION, START = 15.0, 0.033, 0.4, -3.0


def main() -> None:
    t = np.arange(0.0, DURATION + 1e-9, 0.002)
    angle = -SPEED * t / RADIUS                      # rolling toward +x: rotation about −z
    rows = np.column_stack([t, START + SPEED * t, np.zeros_like(t), np.zeros_like(t),
                            np.cos(angle / 2), np.zeros_like(t), np.zeros_like(t), np.sin(angle / 2)])
    np.savetxt(HERE / "rolling_can_path.csv", rows, delimiter=",", header="time,x,y,z,qw,qx,qy,qz",
               comments="", fmt="%.9g")


if __name__ == "__main__":
    main()
