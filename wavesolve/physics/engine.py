"""Run a setup in PyBullet and record what the sound needs, step by step.

Why PyBullet (bench/RESULTS.md, "Physics engine"): a wheel that installs in seconds, a
coefficient of restitution per body, and impacts resolved within one or two steps, so each
collision's impulse is clean; MuJoCo's soft contacts spread an impact over the solver's time
constant and give no direct restitution.

Each body is simulated in its principal frame (centre of mass, principal axes of the mesh's
inertia at the material's density); spheres and boxes use PyBullet's exact shapes, other meshes
their convex hull, or with ``collision = "parts"`` a compound of convex parts (``collision``).
The recording holds, at every step, the principal-frame pose and velocities of each body and
every contact point with its impulse over that step.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from ..meshes import quaternion_matrix
from .collision import convex_parts_file, principal_mesh
from .setup_file import PhysicsSetup

#: body index of the ground plane in recordings and events
GROUND = -1

INSTALL_HINT = 'the physics engine is not installed: pip install "wavesolve[physics]" (PyBullet)'


def require_pybullet():
    """The pybullet module, or ImportError naming the extra to install.

    PyBullet's C library prints its build time when imported (and again when a client connects:
    see :func:`run_engine`), on standard output or standard error by build; that line is dropped
    so that it does not end up in a command's output.
    """
    try:
        with _c_output_dropped():
            import pybullet
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return pybullet


@contextlib.contextmanager
def _c_output_dropped():
    """File descriptors 1 and 2 point at the null device inside the block (C-level prints included:
    PyBullet's build prints its build time on one or the other, by version). Python's own errors
    are exceptions, raised after the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:            # no usable descriptors: nothing to protect
        yield
        return
    libc = ctypes.CDLL(None)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                libc.fflush(None)     # what the library buffered goes to the null device
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


@dataclass
class Recording:
    """Engine states and contacts (world frame, SI units).

    Attributes:
        names: body names (B); index ``GROUND`` (−1) is the ground plane.
        time_step: engine step (s); times (n,) of the states.
        position (B, n, 3), quaternion (B, n, 4, wxyz): centre of mass and principal-frame orientation.
        velocity, angular_velocity (B, n, 3): of the centre of mass (m/s, rad/s).
        contacts: arrays over contact points, one row per point per step: ``state`` (index of the
            state after the step that applied the impulse), ``body_a``, ``body_b``, ``position``
            (m, 3), ``normal`` (3, unit, from b towards a), ``impulse`` (N·s, 3, on a; b gets the
            opposite) and ``normal_impulse`` (N·s).
    """

    names: list[str]
    time_step: float
    times: np.ndarray
    position: np.ndarray
    quaternion: np.ndarray
    velocity: np.ndarray
    angular_velocity: np.ndarray
    contacts: dict[str, np.ndarray] = field(default_factory=dict)

    def rotation(self, body: int) -> np.ndarray:
        """(n, 3, 3) principal-frame → world rotations of one body."""
        return Rotation.from_quat(np.roll(self.quaternion[body], -1, axis=1)).as_matrix()


def empty_contacts() -> dict[str, np.ndarray]:
    return {"state": np.zeros(0, int), "body_a": np.zeros(0, int), "body_b": np.zeros(0, int),
            "position": np.zeros((0, 3)), "normal": np.zeros((0, 3)), "impulse": np.zeros((0, 3)),
            "normal_impulse": np.zeros(0)}


def build_world(setup: PhysicsSetup, client: int) -> tuple[list[int], int | None]:
    """Create the ground plane and bodies in a PyBullet client; returns (body ids, plane id)."""
    p = require_pybullet()
    cfg = setup.config
    p.setGravity(*cfg.physics.gravity, physicsClientId=client)
    p.setTimeStep(cfg.physics.time_step, physicsClientId=client)
    p.setPhysicsEngineParameter(numSolverIterations=cfg.physics.solver_iterations, physicsClientId=client)
    plane = None
    if cfg.ground is not None:
        shape = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
        plane = p.createMultiBody(0, shape, basePosition=[0.0, 0.0, cfg.ground.height], physicsClientId=client)
        p.changeDynamics(plane, -1, restitution=cfg.ground.restitution, lateralFriction=cfg.ground.friction,
                         physicsClientId=client)
    ids = []
    for body in setup.bodies:
        c, P = body.center, body.principal
        # the shape as seen from the principal frame: object origin at −Pᵀc, axes Pᵀ
        frame_pos = (-P.T @ c).tolist()
        frame_quat = Rotation.from_matrix(P.T).as_quat().tolist()
        if body.shape == "sphere":
            radius = float(np.linalg.norm(body.mesh.vertices, axis=1).max())
            shape = p.createCollisionShape(p.GEOM_SPHERE, radius=radius, collisionFramePosition=frame_pos,
                                           physicsClientId=client)
        elif body.shape == "box":
            half = (0.5 * np.ptp(body.mesh.vertices, axis=0)).tolist()
            shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, collisionFramePosition=frame_pos,
                                           collisionFrameOrientation=frame_quat, physicsClientId=client)
        elif body.shape == "parts":           # a compound of the parts' hulls, principal frame
            parts = convex_parts_file(principal_mesh(body.mesh.vertices, body.mesh.faces, c, P))
            shape = p.createCollisionShape(p.GEOM_MESH, fileName=str(parts), physicsClientId=client)
        else:
            hull = body.mesh.convex_hull.vertices
            local = (np.asarray(hull) - c) @ P     # Pᵀ(v − c) per row
            shape = p.createCollisionShape(p.GEOM_MESH, vertices=local.tolist(), physicsClientId=client)
        cfg_b = body.config
        x0, R0 = body.com_pose(np.asarray(cfg_b.position, float), quaternion_matrix(cfg_b.orientation))
        bid = p.createMultiBody(body.mass, shape, basePosition=x0.tolist(),
                                baseOrientation=Rotation.from_matrix(R0).as_quat().tolist(), physicsClientId=client)
        p.changeDynamics(bid, -1, localInertiaDiagonal=body.moments.tolist(), restitution=cfg_b.restitution,
                         lateralFriction=cfg_b.friction, rollingFriction=cfg_b.rolling_friction,
                         spinningFriction=cfg_b.spinning_friction, linearDamping=0.0, angularDamping=0.0,
                         physicsClientId=client)
        p.resetBaseVelocity(bid, cfg_b.velocity, cfg_b.angular_velocity, physicsClientId=client)
        ids.append(bid)
    return ids, plane


def run_engine(setup: PhysicsSetup, logs: tuple[str, str] | None = None) -> Recording:
    """Simulate ``setup`` for its duration; every step's states and contacts.

    ``logs`` = (robot log, contact log) paths also has PyBullet write its own state logs
    (``STATE_LOGGING_GENERIC_ROBOT`` and ``STATE_LOGGING_CONTACT_POINTS``), which
    :func:`wavesolve.physics.bullet_logs.read_bullet_logs` reads back.
    """
    p = require_pybullet()
    with _c_output_dropped():          # connecting prints the build time again
        client = p.connect(p.DIRECT)
    try:
        ids, plane = build_world(setup, client)
        log_ids = []
        if logs is not None:
            log_ids = [p.startStateLogging(p.STATE_LOGGING_GENERIC_ROBOT, str(logs[0]), objectUniqueIds=ids,
                                           physicsClientId=client),
                       p.startStateLogging(p.STATE_LOGGING_CONTACT_POINTS, str(logs[1]), physicsClientId=client)]
        dt = setup.config.physics.time_step
        n = int(round(setup.config.physics.duration / dt)) + 1
        index = {bid: i for i, bid in enumerate(ids)}
        if plane is not None:
            index[plane] = GROUND
        B = len(ids)
        pos, quat = np.zeros((B, n, 3)), np.zeros((B, n, 4))
        vel, ang = np.zeros((B, n, 3)), np.zeros((B, n, 3))
        rows: list[tuple] = []

        def sample(k: int) -> None:
            for i, bid in enumerate(ids):
                x, q = p.getBasePositionAndOrientation(bid, physicsClientId=client)
                v, w = p.getBaseVelocity(bid, physicsClientId=client)
                pos[i, k], quat[i, k] = x, (q[3], q[0], q[1], q[2])
                vel[i, k], ang[i, k] = v, w

        sample(0)
        for k in range(1, n):
            p.stepSimulation(physicsClientId=client)
            sample(k)
            for cp in p.getContactPoints(physicsClientId=client):
                a, b = index[cp[1]], index[cp[2]]
                normal = np.asarray(cp[7])
                impulse = (cp[9] * normal + cp[10] * np.asarray(cp[11]) + cp[12] * np.asarray(cp[13])) * dt
                point = 0.5 * (np.asarray(cp[5]) + np.asarray(cp[6]))
                rows.append((k, a, b, point, normal, impulse, cp[9] * dt))
        for lid in log_ids:
            p.stopStateLogging(lid, physicsClientId=client)
    finally:
        p.disconnect(client)
    return Recording(names=setup.names, time_step=dt, times=np.arange(n) * dt, position=pos, quaternion=quat,
                     velocity=vel, angular_velocity=ang, contacts=contacts_from_rows(rows))


def contacts_from_rows(rows: list[tuple]) -> dict[str, np.ndarray]:
    """Contact arrays from (state, a, b, point, normal, impulse, normal impulse) rows, with the
    pair ordered so that ``body_a > body_b`` (the ground, −1, is always b)."""
    if not rows:
        return empty_contacts()
    state = np.array([r[0] for r in rows], int)
    a, b = np.array([r[1] for r in rows], int), np.array([r[2] for r in rows], int)
    point = np.array([r[3] for r in rows], float)
    normal, impulse = np.array([r[4] for r in rows], float), np.array([r[5] for r in rows], float)
    jn = np.array([r[6] for r in rows], float)
    swap = a < b
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    sign = np.where(swap, -1.0, 1.0)[:, None]
    return {"state": state, "body_a": a, "body_b": b, "position": point, "normal": normal * sign,
            "impulse": impulse * sign, "normal_impulse": jn}
