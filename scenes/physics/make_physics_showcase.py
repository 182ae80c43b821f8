"""Run each physics showcase end to end, timed (run from anywhere).

    python3 scenes/physics/make_physics_showcase.py --render   # physics → scene → sound

The bowl is the showcase bowl (`scenes/showcase/bowl.obj`, made by `scenes/showcase/make_showcase.py`).

Setups beside this script (each is one command, `wavesolve simulate-physics SETUP -o DIR --run`):
  bowl_drop.toml   a ceramic bowl (radius 6 cm, 6 mm wall, foot ring) dropped tilted from 6 cm
                   onto a wooden table: it lands on its foot ring, rocks and settles
  dice.toml        four 2 cm plastic dice thrown onto a wooden table: bounces, tumbles, a collision
  coin_spin.toml   a steel disk (8 cm, 8 mm thick, 40-sided rim) spun on its edge on a table:
                   it precesses down like Euler's disk; the impacts of its rim come faster and
                   faster until it lands flat (the scene covers physics time 2.6–3.75 s)
  marble_bowl.toml a glass marble (2 cm) dropped off-centre into the bowl resting on the table: it
                   bounces on the bowl's inside and rolls round (the bowl collides as convex parts),
                   its rolling on the rough glaze driving the bowl between the bounces

With --render each goes to build/physics_showcase/<name>/ (scene.toml, motion, impacts, modes,
then scene.h5 and scene.wav from `wavesolve run --backend numba`), and the wall times are printed.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUPS = ("bowl_drop", "dice", "coin_spin", "marble_bowl")


def render(out_root: Path) -> None:
    for name in SETUPS:
        out = out_root / name
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wavesolve.cli", "simulate-physics", str(HERE / f"{name}.toml"),
                        "-o", str(out)], check=True)
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wavesolve.cli", "run", str(out / "scene.toml"), "--backend", "numba",
                        "--no-progress"], check=True)
        t2 = time.perf_counter()
        print(f"{name}: physics → scene {t1 - t0:.1f} s, sound {t2 - t1:.1f} s", flush=True)


if __name__ == "__main__":
    if "--render" not in sys.argv:
        sys.exit(__doc__)
    render(Path.cwd() / "build" / "physics_showcase")
