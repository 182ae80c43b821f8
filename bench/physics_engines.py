"""MuJoCo vs PyBullet for wavesolve.physics: install cost and contact-impulse quality.

    python3 bench/physics_engines.py              # contact quality (both engines must be importable)
    python3 bench/physics_engines.py --install    # also: fresh venv per engine, pip install time and size

Contact quality, a ball (r = 2 cm, 0.1 kg) dropped from h = 0.3 m onto a plane, per engine and
time step:
  - impact speed: the ball's speed at the last step before its first contact, vs √(2gh);
  - impulse vs momentum change: the contact impulses summed over the first run of contact steps,
    vs m Δv − m g T over those steps (Newton's second law: the engine's own bookkeeping);
  - how many steps the first collision lasts, the rebound speed (bounce control), and contact
    appearances after 1 s (spurious micro-impacts while resting) for a ball and a tilted cube.
Results: bench/RESULTS.md, "Physics engine".
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

G, R, M, H, T = 9.81, 0.02, 0.1, 0.3, 1.5


def mujoco_drop(dt: float, solref: tuple[float, float] | None, shape: str = "sphere"):
    import mujoco

    sr = f'solref="{solref[0]} {solref[1]}"' if solref else ""
    geom = f'type="sphere" size="{R}"' if shape == "sphere" else 'type="box" size="0.01 0.01 0.01" euler="17 8 0"'
    xml = f"""<mujoco><option timestep="{dt}" gravity="0 0 -{G}"/>
      <worldbody><geom type="plane" size="1 1 0.1" {sr}/>
      <body pos="0 0 {H + R}"><freejoint/><geom {geom} mass="{M}" {sr}/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    f6 = np.zeros(6)
    vz, imp, nc = [], [], []
    for _ in range(int(T / dt)):
        mujoco.mj_step(model, data)
        j = 0.0
        for i in range(data.ncon):
            mujoco.mj_contactForce(model, data, i, f6)
            j += f6[0] * dt * data.contact[i].frame[2]
        vz.append(data.qvel[2])
        imp.append(j)
        nc.append(data.ncon)
    return np.array(vz), np.array(imp), np.array(nc)


def pybullet_drop(dt: float, restitution: float, shape: str = "sphere"):
    import pybullet as p

    c = p.connect(p.DIRECT)
    p.setGravity(0, 0, -G, physicsClientId=c)
    p.setTimeStep(dt, physicsClientId=c)
    plane = p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=c), physicsClientId=c)
    if shape == "sphere":
        cs = p.createCollisionShape(p.GEOM_SPHERE, radius=R, physicsClientId=c)
        q = [0, 0, 0, 1]
    else:
        cs = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.01] * 3, physicsClientId=c)
        q = p.getQuaternionFromEuler([0.3, 0.14, 0])
    b = p.createMultiBody(M, cs, basePosition=[0, 0, H + R], baseOrientation=q, physicsClientId=c)
    p.changeDynamics(b, -1, restitution=restitution, linearDamping=0, angularDamping=0, physicsClientId=c)
    p.changeDynamics(plane, -1, restitution=1.0, physicsClientId=c)
    vz, imp, nc = [], [], []
    for _ in range(int(T / dt)):
        p.stepSimulation(physicsClientId=c)
        cps = p.getContactPoints(b, plane, physicsClientId=c)
        imp.append(sum(cp[9] * dt * cp[7][2] for cp in cps))
        vz.append(p.getBaseVelocity(b, physicsClientId=c)[0][2])
        nc.append(len(cps))
    p.disconnect(c)
    return np.array(vz), np.array(imp), np.array(nc)


def summarise(vz, imp, nc, dt) -> dict:
    on = nc > 0
    k0 = int(np.argmax(on))
    k1 = k0
    while k1 < len(on) and on[k1]:
        k1 += 1
    j = imp[k0:k1].sum()
    change = M * (vz[k1 - 1] - vz[k0 - 1]) + M * G * (k1 - k0) * dt
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    return {"speed_err_%": (-vz[k0 - 1] / math.sqrt(2 * G * H) - 1) * 100, "J_vs_dp_%": (j / change - 1) * 100,
            "steps": k1 - k0, "rebound": vz[k1 - 1] if k1 < len(vz) else float("nan"),
            "late_starts": int(np.sum(starts * dt > 1.0))}


def quality() -> None:
    print("| engine, contact setting | Δt | impact speed vs √(2gh) | ΣJ vs mΔv − mgT | collision steps | rebound "
          "m/s | new contacts after 1 s (ball / cube) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for dt in (1e-3, 5e-4):
        cases = [("MuJoCo, default solref (0.02, 1)", lambda s, dt=dt: mujoco_drop(dt, None, s)),
                 ("MuJoCo, solref (2Δt, 1)", lambda s, dt=dt: mujoco_drop(dt, (2 * dt, 1.0), s)),
                 ("MuJoCo, solref (2Δt, 0.2)", lambda s, dt=dt: mujoco_drop(dt, (2 * dt, 0.2), s)),
                 ("PyBullet, restitution 0.5", lambda s, dt=dt: pybullet_drop(dt, 0.5, s))]
        for name, run in cases:
            ball = summarise(*run("sphere"), dt)
            cube = summarise(*run("box"), dt)
            print(f"| {name} | {dt * 1e3:g} ms | {ball['speed_err_%']:+.2f} % | {ball['J_vs_dp_%']:+.1e} % | "
                  f"{ball['steps']} | {ball['rebound']:.3f} | {ball['late_starts']} / {cube['late_starts']} |")


def install() -> None:
    for pkg in ("mujoco", "pybullet"):
        root = Path(tempfile.mkdtemp(prefix=f"venv-{pkg}-"))
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        pip = root / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", "--upgrade", "pip"], check=True, capture_output=True)
        before = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        start = time.perf_counter()
        done = subprocess.run([str(pip), "install", "--no-cache-dir", pkg], capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - start
        after = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        built = "builds from source" if "Building wheel" in done.stdout else "wheel"
        print(f"{pkg}: exit {done.returncode}, {wall:.1f} s, +{(after - before) / 2**20:.0f} MiB, {built}; "
              + done.stdout.strip().splitlines()[-1])
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if "--install" in sys.argv:
        install()
    quality()
