"""Object motion: poses and rigid-body state over time, and deforming-mesh vertex tracks.

Every motion answers ``state(t) -> RigidState`` (world frame, SI units). Procedural motions are
exact; keyframed motion is a C² cubic spline in position and scipy's RotationSpline in
orientation, so velocity and acceleration are continuous. Deforming meshes give vertex positions
by a C² cubic spline through their frames. Outside the keyframe range the first/last pose is held.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, RotationSpline

from .constants import MOTION_BLOCK


@dataclass(frozen=True)
class RigidState:
    """Pose and its derivatives at one time (world frame).

    Attributes:
        position: (3,) origin of the object frame (m).
        rotation: (3, 3) object → world rotation.
        velocity, acceleration: (3,) of the object-frame origin (m/s, m/s²).
        angular_velocity, angular_acceleration: (3,) (rad/s, rad/s²).
    """

    position: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    angular_velocity: np.ndarray
    angular_acceleration: np.ndarray

    def surface_acceleration(self, points: np.ndarray) -> np.ndarray:
        """Acceleration (n, 3) of material points at world positions (n, 3): a + α×r + ω×(ω×r)."""
        r = np.asarray(points) - self.position
        w = self.angular_velocity
        return (self.acceleration + np.cross(self.angular_acceleration, r)
                + np.cross(w, np.cross(np.broadcast_to(w, r.shape), r)))


_ZERO = np.zeros(3)


class Motion:
    """Base: a rigid motion. ``moves`` is False only for motions whose pose never changes."""

    moves = True
    deforms = False

    def state(self, t: float) -> RigidState:  # pragma: no cover - abstract
        raise NotImplementedError

    def prefetch(self, times: np.ndarray) -> None:
        """Ready the states at ``times`` (s), which a simulation is about to ask for; nothing to do
        where a state is cheap (motions whose states cost keep them: ``_RememberedStates``)."""

    def states(self, times: np.ndarray) -> list[RigidState]:
        """The states at ``times`` (k,) s, not kept (one vectorised call where states cost)."""
        return [self.state(float(t)) for t in np.asarray(times, dtype=np.float64)]

    def pose(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position, rotation) without the derivatives: (3,), (3, 3) at a time t, or (k, 3),
        (k, 3, 3) at k times."""
        if np.ndim(t) == 0:
            state = self.state(float(t))
            return state.position, state.rotation
        states = [self.state(float(tk)) for tk in np.asarray(t)]
        return np.array([s.position for s in states]), np.array([s.rotation for s in states])


class Static(Motion):
    moves = False

    def __init__(self, position: np.ndarray, rotation: np.ndarray) -> None:
        self._state = RigidState(np.asarray(position, float), np.asarray(rotation, float), _ZERO, _ZERO, _ZERO, _ZERO)

    def state(self, t: float) -> RigidState:
        return self._state


class ConstantVelocity(Motion):
    """x(t) = x₀ + v t."""

    def __init__(self, position: np.ndarray, rotation: np.ndarray, velocity: np.ndarray) -> None:
        self.x0, self.R, self.v = np.asarray(position, float), np.asarray(rotation, float), np.asarray(velocity, float)

    def state(self, t: float) -> RigidState:
        return RigidState(self.x0 + self.v * t, self.R, self.v, _ZERO, _ZERO, _ZERO)


def _smoothstep(t: float, ramp: float) -> tuple[float, float, float]:
    """Quintic ramp r(t) from 0 to 1 over [0, ramp] and its first two derivatives (C²)."""
    if ramp <= 0.0 or t >= ramp:
        return 1.0, 0.0, 0.0
    if t <= 0.0:
        return 0.0, 0.0, 0.0
    u = t / ramp
    return (u ** 3 * (10 - 15 * u + 6 * u * u), 30 * u * u * (1 - u) ** 2 / ramp,
            60 * u * (1 - u) * (1 - 2 * u) / ramp ** 2)


class Oscillate(Motion):
    """x(t) = x₀ + A sin(2πf t + φ)·r(t), r a C² quintic ramp over ``ramp`` seconds (0: none)."""

    def __init__(self, position, rotation, amplitude, frequency: float, phase: float = 0.0, ramp: float = 0.0):
        self.x0, self.R = np.asarray(position, float), np.asarray(rotation, float)
        self.A, self.w, self.phi, self.ramp = np.asarray(amplitude, float), 2 * math.pi * frequency, phase, ramp

    def state(self, t: float) -> RigidState:
        s, c = math.sin(self.w * t + self.phi), math.cos(self.w * t + self.phi)
        r, dr, ddr = _smoothstep(t, self.ramp)
        x = self.A * s * r
        v = self.A * (self.w * c * r + s * dr)
        a = self.A * (-self.w ** 2 * s * r + 2 * self.w * c * dr + s * ddr)
        return RigidState(self.x0 + x, self.R, v, a, _ZERO, _ZERO)


class _RememberedStates(Motion):
    """A motion whose states cost enough to keep: one step asks for the state at the same time
    several times (boundary update, shaders, probes, a travelling box's centre), and a simulation
    asks ahead for a block of its coming step times (:meth:`prefetch`), which a subclass computes
    in one vectorised call. Subclasses compute the states of k times in ``_compute_many``; a lone
    time goes the same way, so a state does not depend on the batch it came in. The states are
    immutable, so sharing them is safe."""

    #: states kept: room for two prefetched blocks and the few times around them
    _KEEP = 2 * MOTION_BLOCK + 8

    @property
    def _kept(self) -> dict[float, RigidState]:
        """The states kept, by time, oldest first (made at first use: subclasses set no state here)."""
        return self.__dict__.setdefault("_memo", {})

    def _remember(self, t: float, state: RigidState) -> None:
        memo = self._kept
        if len(memo) >= self._KEEP:
            memo.pop(next(iter(memo)))              # the oldest kept
        memo[t] = state

    def state(self, t: float) -> RigidState:
        found = self._kept.get(t)
        if found is None:
            found = self._compute_many(np.array([t], dtype=np.float64))[0]
            self._remember(t, found)
        return found

    def prefetch(self, times: np.ndarray) -> None:
        """Compute and keep the states at ``times`` (s) not kept yet, in one vectorised call."""
        memo = self._kept
        missing = [t for t in np.asarray(times, dtype=np.float64).tolist() if t not in memo]
        if missing:
            for t, state in zip(missing, self._compute_many(np.array(missing, dtype=np.float64))):
                self._remember(t, state)

    def states(self, times: np.ndarray) -> list[RigidState]:
        return self._compute_many(np.asarray(times, dtype=np.float64))

    def _compute_many(self, t: np.ndarray) -> list[RigidState]:  # pragma: no cover - abstract
        """States at the times t (k,) s."""
        raise NotImplementedError


class Spin(_RememberedStates):
    """Rotation about ``axis`` (world, through the object origin) at ``rate`` rev/s: R(t) = R_axis(2π rate t)·R₀."""

    def __init__(self, position, rotation, axis, rate: float) -> None:
        self.x0, self.R0 = np.asarray(position, float), np.asarray(rotation, float)
        self.axis = np.asarray(axis, float) / np.linalg.norm(axis)
        self.omega = 2 * math.pi * rate

    def _compute_many(self, t: np.ndarray) -> list[RigidState]:
        R = Rotation.from_rotvec(np.outer(t * self.omega, self.axis)).as_matrix() @ self.R0
        w = self.axis * self.omega
        return [RigidState(self.x0, Rk, _ZERO, _ZERO, w, _ZERO) for Rk in R]


class Keyframes(_RememberedStates):
    """Absolute poses at increasing times, C² interpolated (cubic spline / RotationSpline)."""

    def __init__(self, times: np.ndarray, positions: np.ndarray, quaternions_wxyz: np.ndarray) -> None:
        self.t0, self.t1 = float(times[0]), float(times[-1])
        self._pos = CubicSpline(times, positions, axis=0, bc_type="natural")
        xyzw = np.roll(np.asarray(quaternions_wxyz, float), -1, axis=1)
        self._rot = RotationSpline(times, Rotation.from_quat(xyzw))

    def pose(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if np.ndim(t) == 0:
            kept = self._kept.get(float(t))
            if kept is not None:
                return kept.position, kept.rotation
        tc = np.clip(t, self.t0, self.t1)        # the splines take several times in one call
        return self._pos(tc), self._rot(tc).as_matrix()

    def _compute_many(self, t: np.ndarray) -> list[RigidState]:
        tc = np.clip(t, self.t0, self.t1)
        inside = (self.t0 < t) & (t < self.t1)
        pos, vel, acc = self._pos(tc), self._pos(tc, 1), self._pos(tc, 2)
        R = self._rot(tc).as_matrix()
        # RotationSpline's rates are in the body frame: ω_world = R ω_body
        w = np.einsum("kij,kj->ki", R, self._rot(tc, 1))
        dw = np.einsum("kij,kj->ki", R, self._rot(tc, 2))
        return [RigidState(pos[k], R[k], vel[k], acc[k], w[k], dw[k]) if inside[k]
                else RigidState(pos[k], R[k], _ZERO, _ZERO, _ZERO, _ZERO) for k in range(len(t))]


class VertexTrack:
    """Vertex positions of a deforming mesh over time: a C² cubic spline through frames (n, V, 3)."""

    def __init__(self, times: np.ndarray, vertices: np.ndarray) -> None:
        self.t0, self.t1 = float(times[0]), float(times[-1])
        self._spline = CubicSpline(times, vertices, axis=0, bc_type="natural")
        self._first, self._last = vertices[0], vertices[-1]

    def vertices(self, t: float) -> np.ndarray:
        """(V, 3) vertex positions (object frame, m) at time t."""
        if t <= self.t0:
            return self._first
        if t >= self.t1:
            return self._last
        return self._spline(t)

    def acceleration(self, t: float) -> np.ndarray:
        """(V, 3) vertex accelerations (m/s²) at time t (zero outside the frames)."""
        if t <= self.t0 or t >= self.t1:
            return np.zeros_like(self._first)
        return self._spline(t, 2)


class Deforming(Static):
    """A deforming mesh at a fixed pose; its vertices follow a VertexTrack."""

    deforms = True

    def __init__(self, position, rotation, track: VertexTrack) -> None:
        super().__init__(position, rotation)
        self.track = track


def read_keyframes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read (times (n,), positions (n, 3), quaternions wxyz (n, 4)) from CSV or HDF5.

    CSV: header ``time,x,y,z,qw,qx,qy,qz``. HDF5: datasets ``time``, ``position``, ``orientation``.
    Raises ValueError with the reason on malformed data.
    """
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            for name in ("time", "position", "orientation"):
                if name not in f:
                    raise ValueError(f"HDF5 keyframes need datasets time, position, orientation; '{name}' is missing")
            t, pos, quat = f["time"][()], f["position"][()], f["orientation"][()]
    else:
        data = np.genfromtxt(path, delimiter=",", names=True)
        expected = ("time", "x", "y", "z", "qw", "qx", "qy", "qz")
        if data.dtype.names is None or tuple(data.dtype.names) != expected:
            raise ValueError(f"CSV keyframes need the header {','.join(expected)}; found {data.dtype.names}")
        data = np.atleast_1d(data)
        t = data["time"]
        pos = np.stack([data["x"], data["y"], data["z"]], axis=1)
        quat = np.stack([data["qw"], data["qx"], data["qy"], data["qz"]], axis=1)
    t, pos, quat = np.asarray(t, float), np.asarray(pos, float), np.asarray(quat, float)
    if t.ndim != 1 or pos.shape != (len(t), 3) or quat.shape != (len(t), 4):
        raise ValueError(f"shapes do not match: time {t.shape}, position {pos.shape}, orientation {quat.shape}")
    _check_track(t, pos)
    if not np.all(np.isfinite(quat)):
        raise ValueError("orientation contains NaN or Inf")
    norms = np.linalg.norm(quat, axis=1)
    if np.any(norms < 1e-9):
        raise ValueError(f"quaternion of zero length at row {int(np.argmax(norms < 1e-9))}")
    quat = quat / norms[:, None]
    # keep consecutive quaternions in the same hemisphere (q and −q are the same rotation)
    for i in range(1, len(quat)):
        if np.dot(quat[i], quat[i - 1]) < 0:
            quat[i] = -quat[i]
    return t, pos, quat


def write_keyframes(path: Path, times: np.ndarray, positions: np.ndarray, quaternions_wxyz: np.ndarray,
                    attrs: dict[str, str] | None = None) -> Path:
    """Write keyframes (times (n,) s, positions (n, 3) m, quaternions wxyz (n, 4)) as the HDF5 that
    :func:`read_keyframes` reads, atomically; ``attrs`` become file attributes."""
    import h5py

    from .files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["time"], f["position"], f["orientation"] = times, positions, quaternions_wxyz
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def read_vertex_frames(path: Path, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Read (times (n,), vertices (n, V, 3)) from an HDF5 file with datasets ``time``, ``vertices``."""
    import h5py

    with h5py.File(path, "r") as f:
        for name in ("time", "vertices"):
            if name not in f:
                raise ValueError(f"deforming-mesh files need datasets time and vertices; '{name}' is missing")
        t, verts = np.asarray(f["time"][()], float), np.asarray(f["vertices"][()], float)
    if verts.ndim != 3 or verts.shape[0] != len(t) or verts.shape[2] != 3:
        raise ValueError(f"vertices must have shape (frames, vertices, 3) with {len(t)} frames; got {verts.shape}")
    if verts.shape[1] != n_vertices:
        raise ValueError(f"frames have {verts.shape[1]} vertices but the mesh has {n_vertices}")
    _check_track(t, verts)
    return t, verts


def _check_track(t: np.ndarray, values: np.ndarray) -> None:
    if len(t) < 2:
        raise ValueError("need at least 2 frames")
    if not np.all(np.isfinite(t)) or not np.all(np.isfinite(values)):
        raise ValueError("contains NaN or Inf")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        raise ValueError(f"times must increase strictly; row {int(bad[0]) + 1} has t = {t[bad[0] + 1]} "
                         f"after {t[bad[0]]}")
