"""``modal`` shader: rigid ringing — the object's vibration modes excited by impacts.

Each mode i (frequency ωᵢ, damping ξᵢ, mass-normalised shape Uᵢ on the surface vertices) obeys
q̈ᵢ + 2ξᵢωᵢq̇ᵢ + ωᵢ²qᵢ = Uᵢ(x_c)·f(t), f the half-sine force of each impact over its Hertz contact
time (``wavesolve.contact``) and, with a ``rolling_file``, the roughness force of each rolling or
sliding touch at its moving contact point (``wavesolve.rolling``: one piece per engine interval,
at that interval's point). The oscillators are stepped exactly at an internal rate (the
impulse-invariant recursion of ``wavesolve.modal``, each step receiving the force's integral over
it), evaluated exactly between samples, and

    aₙ(x, t) = gain · Σᵢ (Uᵢ(x)·n) q̈ᵢ(t),   q̈ᵢ = Uᵢ(x_c)·f(t) − 2ξᵢωᵢq̇ᵢ − ωᵢ²qᵢ,

with Uᵢ(x) interpolated barycentrically on the boundary point's triangle. ``reset(t)`` reruns the
recursion from 0 to t, so time-parallel chunks ring on exactly. Its net volume acceleration is
Q̇ = gain · Σᵢ Vᵢ q̈ᵢ with Vᵢ = ∮ Uᵢ·n dS, exact on the mesh (Uᵢ is linear on each triangle), which
the boundary holds the object's net face flux at (``wavesolve.flux_balance``).

Scene table::

    [[objects.shaders]]
    type = "modal"
    material = "ceramic"                  # Hertz contact (and the FEM when modes are computed)
    modes = "bowl_modes.h5"               # from `wavesolve modal MESH --material ceramic -o …`;
                                          # omit to compute (cached) at `resolution`
    impacts = [ { time = 0.01, position = [0.0, 0.0, 0.03], impulse = [0.0, 0.0, -0.01], speed = 0.8 } ]
    # rolling_file = "bowl_rolling.h5"    # rolling and sliding forces (wavesolve.rolling)
    max_frequency = 20000.0               # Hz: modes above are dropped (default: all in the file)
    damping = "file"                      # or "material": ξ from the material's α, β
"""
from __future__ import annotations

import math
from typing import Any, Literal

import igl
import numpy as np
import trimesh
from pydantic import Field, PositiveFloat

from wavesolve.contact import ImpactListConfig, ForcingIndex, mass_properties, resolve_impacts
from wavesolve.errors import SceneError
from wavesolve.materials import parse_material
from wavesolve.modal import ModalOscillators, free_motion
from wavesolve.modes import ModeSet
from wavesolve.rolling import resolve_rolling
from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig, ShaderContext
from wavesolve.signals import merge_intervals
from wavesolve.validation import read_named_file

#: default internal step rate of the modal oscillators (Hz); at least 8× the highest mode is used
DEFAULT_RATE = 192_000.0
#: a mode is considered silent once it has decayed by this factor (active_intervals)
SILENT = 1e-6


def interpolate_shapes(mesh: trimesh.Trimesh, shapes: np.ndarray, triangles: np.ndarray,
                       points: np.ndarray) -> np.ndarray:
    """Shapes (n, 3, M) at points (n, 3) on the given triangles (barycentric, object frame)."""
    faces = np.asarray(mesh.faces)[triangles]
    bary = trimesh.triangles.points_to_barycentric(np.asarray(mesh.vertices)[faces], points)
    bary = np.clip(bary, 0.0, 1.0)
    bary /= bary.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkdm->ndm", bary, shapes[faces])


def mode_volumes(mesh: trimesh.Trimesh, shapes: np.ndarray) -> np.ndarray:
    """Vᵢ = ∮ Uᵢ·n dS (m³ per unit modal coordinate), (M,), of shapes (vertices, 3, M) on the closed
    mesh (outward normals): Uᵢ is linear on each triangle, so each one adds its vector area times
    the mean of its corners' Uᵢ."""
    return np.einsum("fd,fdm->m", 0.5 * mesh.triangles_cross, shapes[np.asarray(mesh.faces)].mean(axis=1))


class ModalShader(Shader):
    """Σᵢ (Uᵢ·n) q̈ᵢ(t) with modal oscillators driven by half-sine impact forces."""

    knows_volume = True

    class Config(ShaderConfig, ImpactListConfig):
        type: Literal["modal"]
        material: str | dict[str, Any]
        modes: str | None = Field(default=None, description="modes file (HDF5); None: compute")
        resolution: PositiveFloat | None = Field(default=None, description="FEM element size (m) when computing")
        max_frequency: PositiveFloat | None = Field(default=None, description="drop modes above (Hz)")
        damping: Literal["file", "material"] = "file"
        rate: PositiveFloat | None = Field(default=None, description="internal step rate (Hz)")
        gain: float = 1.0

    def __init__(self, config: Config, context: ShaderContext) -> None:
        super().__init__(config, context)
        file, key = context.scene_file, context.key
        self.material = parse_material(config.material, file, f"{key}.material")
        mesh = context.mesh
        if mesh is None:
            raise SceneError(file, key, "the modal shader needs the object's mesh", "use it in a scene file")
        self.mesh = mesh
        mass, volume, center, inertia = self._body_properties(config, context)
        modes = self._load_modes(config, context)
        keep = np.ones(len(modes), dtype=bool) if config.max_frequency is None else modes.frequencies <= config.max_frequency
        if not keep.any():
            raise SceneError(file, f"{key}.max_frequency", "no mode lies below max_frequency",
                             f"raise it above the lowest mode ({modes.frequencies.min():.1f} Hz)")
        self.frequencies = modes.frequencies[keep]
        self.shapes = modes.shapes[:, :, keep]
        self.volumes = mode_volumes(mesh, self.shapes)
        omega = 2 * math.pi * self.frequencies
        xi = self.material.damping_ratio(omega) if config.damping == "material" else modes.damping[keep]
        if np.any(xi >= 1):
            raise SceneError(file, f"{key}.damping", "some modes are over-damped (ξ ≥ 1)",
                             "lower the material's Rayleigh α/β or max_frequency")
        rate = config.rate or max(DEFAULT_RATE, 8.0 * float(self.frequencies.max()))
        if rate < 2.5 * self.frequencies.max():
            raise SceneError(file, f"{key}.rate", f"rate {rate:g} Hz is too low for modes up to "
                             f"{self.frequencies.max():.0f} Hz", f"use rate ≥ {2.5 * self.frequencies.max():.0f}")
        self.bank = ModalOscillators(omega, xi, 1.0 / rate)
        self.impacts = resolve_impacts(config, self.material, mass, volume, file, key, context.scene_dir,
                                       center, np.linalg.inv(inertia))
        # the impacts and the rolling pieces, sorted by start: each has t0, end, position and the
        # force's impulse_between(a, b) and force(t) (3,), object frame
        self.forces = sorted(self.impacts + resolve_rolling(config, file, key, context.scene_dir), key=lambda f: f.t0)
        self._index = ForcingIndex(self.forces)
        # the mode shapes at each force's point, (n, 3, M): its modal impulse is J·Uᵢ(x_c)
        if self.forces:
            pts = np.array([imp.position for imp in self.forces])
            _, tri, closest = igl.point_mesh_squared_distance(pts, np.asarray(mesh.vertices, dtype=np.float64),
                                                             np.asarray(mesh.faces, dtype=np.int64))
            self.at_contact = interpolate_shapes(mesh, self.shapes, tri, closest)
        else:
            self.at_contact = np.zeros((0, 3, len(omega)))
        self._cache: tuple[BoundaryPoints, np.ndarray] | None = None
        self._block: tuple[np.ndarray, np.ndarray] | None = None   # the last block's (times, q̈)
        self._first_sample = (int(math.floor(self.forces[0].t0 * rate)) - 1) if self.forces else None
        # per force, the samples whose impulse it may reach (``_impulse``: those k with
        # t0 < (k + ½)Δt and end > (k − ½)Δt), widened by one on each side: outside them the
        # oscillators ring freely
        self._forced = np.stack([np.floor(self._index.starts * rate - 0.5) - 1,
                                 np.ceil(self._index.ends * rate + 0.5) + 1], axis=1).astype(np.int64)

    def _body_properties(self, config: Config, context: ShaderContext
                         ) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(mass kg, volume m³, centre of mass (3,), inertia (3, 3)) for the impacts' Hertz contact."""
        try:
            return mass_properties(self.mesh, self.material.density)
        except ValueError as exc:
            raise SceneError(context.scene_file, context.key, str(exc), "use a closed (watertight) mesh") from None

    def _load_modes(self, config: Config, context: ShaderContext) -> ModeSet:
        file, key = context.scene_file, context.key
        if config.modes is None:
            from wavesolve.fem import modal_analysis

            try:
                return modal_analysis(self.mesh, self.material, resolution=config.resolution,
                                      max_frequency=config.max_frequency or 20000.0)
            except ValueError as exc:
                raise SceneError(file, f"{key}.resolution", f"modal analysis failed: {exc}",
                                 "choose another resolution, or give a modes file from `wavesolve modal`") from None
        path = context.scene_dir / config.modes
        modes = read_named_file(file, f"{key}.modes", path, "modes file", ModeSet.load, "write it with `wavesolve modal`",
                                "make it with `wavesolve modal MESH --material NAME -o FILE`, or omit modes to compute")
        if modes.shapes.shape[0] != len(self.mesh.vertices):
            raise SceneError(file, f"{key}.modes", f"modes file '{path}' has shapes for {modes.shapes.shape[0]} "
                             f"vertices but the mesh has {len(self.mesh.vertices)}",
                             "compute the modes of this mesh (same file and scale)")
        return modes

    # -- time stepping --------------------------------------------------------------------------

    def _impulse(self, k: int) -> np.ndarray:
        """Modal impulse gₖ: the force's integral over [tₖ − Δt/2, tₖ + Δt/2)."""
        dt = self.bank.dt
        a, b = (k - 0.5) * dt, (k + 0.5) * dt
        g = np.zeros(len(self.bank.omega))
        for i in self._index.overlapping(a, b):
            g += self.forces[i].impulse_between(a, b) @ self.at_contact[i]
        return g

    def _force(self, t: float) -> np.ndarray:
        f = np.zeros(len(self.bank.omega))
        for i in self._index.overlapping(t, t, closed=True):
            f += self.forces[i].force(t) @ self.at_contact[i]
        return f

    def _advance_to(self, k: int) -> None:
        bank = self.bank
        if k < bank.k:
            bank.restart()
        if self._first_sample is None:
            bank.k = k
            return
        if bank.k < self._first_sample:  # at rest until the first impact
            bank.k = min(k, self._first_sample)
        while bank.k < k:
            if k - bank.k > 1:              # a stretch no impact reaches: one exact free motion
                stop = min(k, self._next_forced(bank.k))
                if stop - bank.k > 1:
                    bank.jump(stop - bank.k)
                    continue
            bank.advance(self._impulse(bank.k))

    def _next_forced(self, k: int) -> int:
        """The first sample from k on that an impact's impulse may reach (a large number if none)."""
        lo, hi = self._forced[:, 0], self._forced[:, 1]
        ahead = hi >= k
        return max(k, int(lo[ahead].min())) if ahead.any() else np.iinfo(np.int64).max

    def modal_acceleration(self, t: float) -> np.ndarray:
        """q̈ (M,) at time t (s)."""
        dt = self.bank.dt
        k = int(math.floor(t / dt + 1e-9))
        self._advance_to(k)
        q, v = self.bank.at(t - k * dt, self._impulse(k))
        return self.bank.acceleration(q, v, self._force(t))

    def modal_acceleration_block(self, times: np.ndarray) -> np.ndarray:
        """q̈ (K, M) at increasing times (K,) s. Where no impact acts on the block's span, from the
        state at its first sample by the exact free motion, all times at once (equal to stepping the
        recursion, up to rounding); otherwise time by time."""
        bank, dt = self.bank, self.bank.dt
        ks = np.floor(times / dt + 1e-9).astype(np.int64)
        lo, hi = (ks[0] - 1) * dt, (ks[-1] + 1) * dt
        if len(self._index.overlapping(lo, hi, closed=True)):
            return np.stack([self.modal_acceleration(float(t)) for t in times])
        self._advance_to(int(ks[0]))
        q0, v0 = bank.q, bank.v
        cqq, cqv, cvq, cvv = free_motion(bank.omega, bank.sigma, bank.wd, (times - ks[0] * dt)[:, None])
        q, v = cqq * q0 + cqv * v0, cvq * q0 + cvv * v0
        cqq, cqv, cvq, cvv = free_motion(bank.omega, bank.sigma, bank.wd, (ks[-1] - ks[0]) * dt)
        bank.q, bank.v, bank.k = cqq * q0 + cqv * v0, cvq * q0 + cvv * v0, int(ks[-1])
        return bank.acceleration(q, v)

    def modal_displacement(self, t: float) -> np.ndarray:
        """q (M,) at time t (s): the surface displacement is Σᵢ Uᵢ qᵢ (e.g. to animate the mesh)."""
        dt = self.bank.dt
        k = int(math.floor(t / dt + 1e-9))
        self._advance_to(k)
        return self.bank.at(t - k * dt, self._impulse(k))[0]

    def reset(self, t: float) -> None:
        """Restart at t: the recursion is rerun from 0 to t (exact ringing state), jumping over the
        stretches between impacts by the exact free motion."""
        self._block = None
        self.bank.restart()
        self._advance_to(int(math.floor(t / self.bank.dt + 1e-9)))

    def _normal_shapes(self, points: BoundaryPoints) -> np.ndarray:
        if self._cache is None or self._cache[0] is not points:
            u = interpolate_shapes(self.mesh, self.shapes, points.triangle, points.position_local)
            self._cache = (points, np.einsum("nd,ndm->nm", points.normal_local, u))
        return self._cache[1]

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        if not self.forces or t < self.forces[0].t0 or len(points) == 0:
            return np.zeros(len(points))
        return self.config.gain * (self._normal_shapes(points) @ self.modal_acceleration(t))

    def _live_block(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(live (K,) bool: at or after the first impact, q̈ (live count, M)) at the times (K,) s; the
        last block's kept, as ``normal_acceleration_block`` and ``volume_acceleration_block`` ask for
        the same times in turn (asking the oscillators again would rerun them from 0)."""
        if self._block is not None and np.array_equal(self._block[0], times):
            return self._block[1]
        live = times >= self.forces[0].t0 if self.forces else np.zeros(len(times), dtype=bool)
        qdd = self.modal_acceleration_block(times[live]) if live.any() else np.zeros((0, len(self.volumes)))
        self._block = (np.array(times, dtype=np.float64), (live, qdd))
        return live, qdd

    def normal_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        out = np.zeros((len(times), len(points)))
        if not self.forces or len(points) == 0:
            return out
        live, qdd = self._live_block(times)
        if live.any():
            out[live] = self.config.gain * (qdd @ self._normal_shapes(points).T)
        return out

    def volume_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """Q̇ = gain · Σᵢ Vᵢ q̈ᵢ (m³/s²), (K,), at the times (K,) s."""
        out = np.zeros(len(times))
        if self.forces:
            live, qdd = self._live_block(times)
            out[live] = self.config.gain * (qdd @ self.volumes)
        return out

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """From each impact until every mode has decayed by 1e-6 (generous, never short)."""
        ring = math.log(1.0 / SILENT) / float(np.min(self.bank.sigma)) if np.min(self.bank.sigma) > 0 else math.inf
        spans = merge_intervals([(imp.t0, imp.end + ring) for imp in self.forces])
        return [(max(a, t0), min(b, t1)) for a, b in spans if b > t0 and a < t1]
