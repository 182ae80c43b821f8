"""Import PyBullet's own state logs as a :class:`~wavesolve.physics.engine.Recording`.

PyBullet writes binary logs with ``startStateLogging``: a line of comma-separated field names, a
line with the Python ``struct`` format of one record, then records, each after the two marker bytes
0xAA 0xBB. Two kinds are read (both written at every ``stepSimulation``):

- ``STATE_LOGGING_GENERIC_ROBOT`` (``objectUniqueIds`` = the setup's bodies): ``stepCount``,
  ``objectId``, ``posX…Z`` and ``oriX…W`` (centre-of-mass frame), ``velX…Z``, ``omegaX…Z``;
- ``STATE_LOGGING_CONTACT_POINTS``: ``stepCount``, ``bodyUniqueIdA/B``, ``positionOnA/B``,
  ``contactNormalOnB``, ``normalForce``.

Record ``stepCount = s`` holds the state after step s + 1 (state index s + 1; index 0 is the
setup's initial state). The contact log has no friction forces, so imported impulses are normal
only, and its values are float32. The bodies must have been created as
:func:`wavesolve.physics.engine.build_world` does (the plane first when there is a ground, then
the setup's objects in order) or their ids given in ``ids``.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..meshes import quaternion_matrix
from .engine import GROUND, Recording, contacts_from_rows, empty_contacts
from .setup_file import PhysicsSetup

MARKER = b"\xaa\xbb"


def read_log(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(field names, records (n, fields) as float64) of one PyBullet state log; ValueError if malformed."""
    data = Path(path).read_bytes()
    try:
        end1 = data.index(b"\n")
        end2 = data.index(b"\n", end1 + 1)
        keys = data[:end1].decode("ascii").split(",")
        fmt = "<" + data[end1 + 1:end2].decode("ascii")
        size = struct.calcsize(fmt)
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ValueError(f"'{path}' is not a PyBullet state log (no header and format lines: {exc})") from None
    if len(keys) != len(fmt) - 1:
        raise ValueError(f"'{path}': {len(keys)} field names but the format '{fmt[1:]}' has {len(fmt) - 1} fields")
    body = data[end2 + 1:]
    n = len(body) // (size + 2)
    if len(body) % (size + 2):
        raise ValueError(f"'{path}': truncated ({len(body) % (size + 2)} bytes after the last whole record)")
    dtype = np.dtype([("marker", "S2")] + [(f"f{i}", "<" + ch) for i, ch in enumerate(fmt[1:])])
    records = np.frombuffer(body, dtype=dtype, count=n)
    if n and np.any(records["marker"] != MARKER):
        raise ValueError(f"'{path}': record marker 0xAABB missing (not a PyBullet log, or another version)")
    values = np.stack([records[f"f{i}"].astype(np.float64) for i in range(len(keys))], axis=1) if n else \
        np.zeros((0, len(keys)))
    return keys, values


def _columns(keys: list[str], path, names: list[str]) -> list[int]:
    missing = [k for k in names if k not in keys]
    if missing:
        raise ValueError(f"'{path}' lacks the fields {missing}: is it the right kind of log?")
    return [keys.index(k) for k in names]


def read_bullet_logs(setup: PhysicsSetup, robot_log: str | Path, contact_log: str | Path,
                     ids: list[int] | None = None, plane_id: int | None = None) -> Recording:
    """A Recording of ``setup`` from a GENERIC_ROBOT log and a CONTACT_POINTS log (ValueError if bad)."""
    has_plane = setup.config.ground is not None
    if ids is None:
        ids = list(range(1 if has_plane else 0, len(setup.bodies) + (1 if has_plane else 0)))
        plane_id = 0 if has_plane else None
    dt = setup.config.physics.time_step
    keys, rows = read_log(robot_log)
    cols = _columns(keys, robot_log, ["stepCount", "objectId", "posX", "posY", "posZ", "oriX", "oriY", "oriZ",
                                      "oriW", "velX", "velY", "velZ", "omegaX", "omegaY", "omegaZ"])
    if len(rows) == 0:
        raise ValueError(f"'{robot_log}' holds no records")
    steps = rows[:, cols[0]].astype(int)
    n = int(steps.max()) + 2
    B = len(setup.bodies)
    pos, quat = np.zeros((B, n, 3)), np.zeros((B, n, 4))
    vel, ang = np.zeros((B, n, 3)), np.zeros((B, n, 3))
    seen = np.zeros((B, n), bool)
    for i, body in enumerate(setup.bodies):
        c = body.config
        x0, R0 = body.com_pose(np.asarray(c.position, float), quaternion_matrix(c.orientation))
        xyzw = Rotation.from_matrix(R0).as_quat()
        pos[i, 0], quat[i, 0], vel[i, 0], ang[i, 0] = x0, np.roll(xyzw, 1), c.velocity, c.angular_velocity
        seen[i, 0] = True
        mine = rows[rows[:, cols[1]].astype(int) == ids[i]]
        if len(mine) == 0:
            raise ValueError(f"'{robot_log}' has no records of object id {ids[i]} ('{body.name}')")
        k = mine[:, cols[0]].astype(int) + 1
        pos[i, k] = mine[:, cols[2:5]]
        quat[i, k] = mine[:, [cols[8], cols[5], cols[6], cols[7]]]
        vel[i, k], ang[i, k] = mine[:, cols[9:12]], mine[:, cols[12:15]]
        seen[i, k] = True
    if not seen.all():
        body, k = np.argwhere(~seen)[0]
        raise ValueError(f"'{robot_log}' misses the state of '{setup.bodies[body].name}' at step {k - 1}")
    quat /= np.linalg.norm(quat, axis=2, keepdims=True)
    keys_c, crow = read_log(contact_log)
    cc = _columns(keys_c, contact_log, ["stepCount", "bodyUniqueIdA", "bodyUniqueIdB", "positionOnAX", "positionOnAY",
                                        "positionOnAZ", "positionOnBX", "positionOnBY", "positionOnBZ",
                                        "contactNormalOnBX", "contactNormalOnBY", "contactNormalOnBZ", "normalForce"])
    index = {bid: i for i, bid in enumerate(ids)}
    if plane_id is not None:
        index[plane_id] = GROUND
    out_rows = []
    for r in crow:
        a, b = int(r[cc[1]]), int(r[cc[2]])
        if a not in index or b not in index:
            continue   # bodies outside the setup
        normal = r[[cc[9], cc[10], cc[11]]]
        jn = float(r[cc[12]]) * dt
        point = 0.5 * (r[[cc[3], cc[4], cc[5]]] + r[[cc[6], cc[7], cc[8]]])
        out_rows.append((int(r[cc[0]]) + 1, index[a], index[b], point, np.asarray(normal), jn * np.asarray(normal), jn))
    contacts = contacts_from_rows(out_rows) if out_rows else empty_contacts()
    return Recording(names=setup.names, time_step=dt, times=np.arange(n) * dt, position=pos, quaternion=quat,
                     velocity=vel, angular_velocity=ang, contacts=contacts)
