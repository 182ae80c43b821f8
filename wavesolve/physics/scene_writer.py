"""Write a ready scene from a physics recording: motion files, impact files, modes, scene.toml.

Per body ``NAME``: ``NAME_motion.h5`` (keyframes: time, position, orientation wxyz of the object
frame at the setup's export rate), ``NAME_impacts.csv`` (object frame, impulse on this body, with
speed and Hertz duration), ``NAME_rolling.h5`` (the roughness forces of its rolling and sliding
touches, ``wavesolve.rolling``, when it has any on a rough surface), ``NAME_modes.h5`` (when the
body has modes below the scene's highest frequency) and its mesh file; for the whole run
``contacts.csv`` (every impact, world frame) and ``scene.toml`` with the motion, impacts and rolling
forces wired to the ``modal`` and ``acceleration_noise`` shaders of each body. Every file is
written to a temporary name and renamed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ..constants import PHYSICS_GROUND_GAP_CELLS, SOUND_SPEED
from ..contact import write_impacts_csv
from ..files import atomic_path
from ..motion import write_keyframes
from ..rolling import ContactForce, save_rolling
from .engine import GROUND, Recording
from .events import BodyImpacts, ContactEvent
from .setup_file import PhysicsSetup, default_max_frequency

SCENE_NAME = "scene.toml"


@dataclass
class WrittenScene:
    """What :func:`write_scene` wrote: the scene file, every file, and per body its impacts, modes
    and rolling touches."""

    scene: Path
    files: list[Path]
    impacts: dict[str, int]
    modes: dict[str, int]
    rolling: dict[str, int]


def motion_frames(setup: PhysicsSetup, rec: Recording, body: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (n,), object-frame origins (n, 3), quaternions wxyz (n, 4)) at the export rate, in
    scene time (physics time − ``sound.start``; frames from one frame before the start)."""
    stride = max(1, int(round(1.0 / (setup.config.physics.export_rate * rec.time_step))))
    idx = np.arange(0, len(rec.times), stride)
    if idx[-1] != len(rec.times) - 1:
        idx = np.append(idx, len(rec.times) - 1)
    start = setup.config.sound.start
    first = max(0, int(np.searchsorted(rec.times[idx], start, side="right")) - 1)
    idx = idx[first:]
    x, R = setup.bodies[body].object_pose(rec.position[body, idx], rec.rotation(body)[idx])
    q = Rotation.from_matrix(R).as_quat()
    return rec.times[idx] - start, x, np.roll(q, 1, axis=1)


def motion_bounds(setup: PhysicsSetup, rec: Recording, body: int) -> np.ndarray:
    """(2, 3) world bounds of a body's convex hull over the recorded states the scene spans (m)."""
    b = setup.bodies[body]
    hull = np.asarray(b.mesh.convex_hull.vertices)
    sound = setup.config.sound
    end = sound.start + (sound.duration or setup.config.physics.duration)
    keep = (rec.times >= sound.start - rec.time_step) & (rec.times <= end + rec.time_step)
    x, R = b.object_pose(rec.position[body][keep], rec.rotation(body)[keep])
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for start in range(0, len(x), 2048):
        pts = np.einsum("nij,vj->nvi", R[start:start + 2048], hull) + x[start:start + 2048, None, :]
        lo, hi = np.minimum(lo, pts.min(axis=(0, 1))), np.maximum(hi, pts.max(axis=(0, 1)))
    return np.stack([lo, hi])


def write_scene(setup: PhysicsSetup, rec: Recording, events: list[ContactEvent], impacts: list[BodyImpacts],
                out_dir: str | Path, cache: bool = True, rolling: list[list[ContactForce]] | None = None
                ) -> WrittenScene:
    """Write the scene directory (created if missing); returns what was written. ``rolling``: per
    body its roughness forces (``rolling_forces.body_rolling``; None: none)."""
    from ..fem import modal_analysis

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg, sound = setup.config, setup.config.sound
    h = sound.cell_size
    max_f = sound.max_frequency or default_max_frequency(h, SOUND_SPEED)
    files: list[Path] = []
    n_modes: dict[str, int] = {}
    n_impacts: dict[str, int] = {}
    n_rolling: dict[str, int] = {}
    object_tables: list[str] = []
    bounds = []
    for i, body in enumerate(setup.bodies):
        name = _file_stem(body.name)
        t, x, q = motion_frames(setup, rec, i)
        motion_path = out / f"{name}_motion.h5"

        files.append(write_keyframes(motion_path, t, x, q, {
            "source": "wavesolve simulate-physics (PyBullet)",
            "frame": "object frame origin and orientation (w, x, y, z), world frame"}))
        bounds.append(motion_bounds(setup, rec, i))
        rows = impacts[i].rows[impacts[i].rows[:, 0] >= sound.start].copy()
        rows[:, 0] -= sound.start
        n_impacts[body.name] = len(rows)
        lines = ["[[objects]]", f"name = {_toml(body.name)}"]
        if body.mesh_file is not None:
            mesh_name = f"{name}{body.mesh_file.suffix}"
            files.append(_copy_atomically(body.mesh_file, out / mesh_name))
            lines.append(f"mesh = {_toml(mesh_name)}")
            if body.config.scale != 1.0:
                lines.append(f"scale = {_toml(body.config.scale)}")
        else:
            lines.append(f"mesh = {_toml(body.config.mesh)}")
            if body.config.scale != 1.0:
                lines.append(f"scale = {_toml(body.config.scale)}")
        lines.append(f'motion = {{ type = "keyframes", file = {_toml(motion_path.name)} }}')
        forces = rolling[i] if rolling is not None else []
        n_rolling[body.name] = len(forces)
        if len(rows) or forces:
            sources = []
            if len(rows):
                csv_path = out / f"{name}_impacts.csv"
                files.append(write_impacts_csv(csv_path, rows))
                sources.append(f"impacts_file = {_toml(csv_path.name)}")
            if forces:
                rolling_path = out / f"{name}_rolling.h5"
                files.append(save_rolling(rolling_path, forces))
                sources.append(f"rolling_file = {_toml(rolling_path.name)}")
            material = _toml(body.config.material)
            n_modes[body.name] = 0
            if body.config.modal:
                modes = modal_analysis(body.mesh, body.material, resolution=sound.modal_resolution,
                                       max_frequency=max_f, cache=cache)
                n_modes[body.name] = len(modes)
                if len(modes):
                    modes_path = out / f"{name}_modes.h5"
                    modes.save(modes_path)
                    files.append(modes_path)
                    lines += ["", "[[objects.shaders]]", 'type = "modal"', f"material = {material}",
                              f"modes = {_toml(modes_path.name)}", *sources]
            lines += ["", "[[objects.shaders]]", 'type = "acceleration_noise"', f"material = {material}", *sources]
        object_tables.append("\n".join(lines))
    lo = np.min([b[0] for b in bounds], axis=0) - sound.margin
    hi = np.max([b[1] for b in bounds], axis=0) + sound.margin
    top = np.max([b[1] for b in bounds], axis=0)
    middle = 0.5 * (np.min([b[0] for b in bounds], axis=0) + top)
    listeners = [(lis.name, list(lis.position)) for lis in sound.listeners] or [
        ("above", [float(middle[0]), float(middle[1]), float(top[2] + 0.5 * sound.margin)])]
    for _, pos in listeners:
        lo, hi = np.minimum(lo, np.asarray(pos) - 2 * h), np.maximum(hi, np.asarray(pos) + 2 * h)
    ground = None
    if cfg.ground is not None:
        lowest = float(np.min([b[0, 2] for b in bounds]))
        ground = min(cfg.ground.height, lowest) - PHYSICS_GROUND_GAP_CELLS * h
        lo[2] = ground
    size = np.ceil((hi - lo) / h - 1e-9) * h
    center = lo + size / 2 if ground is not None else 0.5 * (lo + hi)
    if ground is not None:
        center[2] = ground + size[2] / 2
    duration = sound.duration or cfg.physics.duration - sound.start
    header = [
        f"# Made by `wavesolve simulate-physics {setup.path.name}` (PyBullet): {len(events)} impacts"
        + (f"; scene time 0 is physics time {sound.start:g} s." if sound.start else "."),
        "# Motion: *_motion.h5 keyframes; impacts: *_impacts.csv (object frame; contacts.csv: world frame);"
        " rolling and sliding: *_rolling.h5.",
        "[simulation]", f"duration = {_toml(duration)}", f"sample_rate = {_toml(sound.sample_rate)}",
        f"cell_size = {_toml(h)}", f"precision = {_toml(sound.precision)}", "",
        "[domain]", f"center = {_toml([float(v) for v in center])}", f"size = {_toml([float(v) for v in size])}", ""]
    if ground is not None:
        note = f"# the plane at z = {cfg.ground.height:g}; {PHYSICS_GROUND_GAP_CELLS:g} cell below the lowest point"
        header += [f"[ground]            {note}", f"height = {_toml(ground)}", ""]
    listener_tables = [f"[[listeners]]\nname = {_toml(n)}\nposition = {_toml([float(v) for v in p])}"
                       for n, p in listeners]
    stem = "scene"
    text = "\n".join(header) + "\n" + "\n\n".join(object_tables) + "\n\n" + "\n\n".join(listener_tables) + \
        f'\n\n[output]\nhdf5 = "{stem}.h5"\nwav = "{stem}.wav"\n'
    files.append(_write_contacts(out / "contacts.csv", setup, events))
    scene_path = _write_text(out / SCENE_NAME, text)
    files.append(scene_path)
    return WrittenScene(scene_path, files, n_impacts, n_modes, n_rolling)


def _write_contacts(path: Path, setup: PhysicsSetup, events: list[ContactEvent]) -> Path:
    def name(i: int) -> str:
        return "ground" if i == GROUND else setup.bodies[i].name

    lines = ["time,end,body_a,body_b,x,y,z,nx,ny,nz,jx,jy,jz,speed"]
    for e in events:
        values = [e.time, e.end] + [name(e.body_a), name(e.body_b)] + [*e.point, *e.normal, *e.impulse, e.speed]
        lines.append(",".join(v if isinstance(v, str) else repr(float(v)) for v in values))
    return _write_text(path, "\n".join(lines) + "\n")


def _file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _toml(value: Any) -> str:
    """A TOML literal for a string, number, bool, list or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} to TOML")


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _copy_atomically(src: Path, dst: Path) -> Path:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst
