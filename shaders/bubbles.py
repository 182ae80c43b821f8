"""``bubbles`` shader: the sound of water — ringing air bubbles pushing the free surface.

The object carrying the shader is the water body (a flat slab, or a disc filling a bowl); the faces
whose outward normal lies within 60° of ``surface_normal`` (object frame, default +z) form its free
surface, taken as the plane through their highest point. Each bubble is a damped volume oscillator
(``wavesolve.bubbles``: Minnaert frequency with surface tension, radiative + viscous + thermal
damping, the Czerski–Deane-shaped entrainment forcing at its birth, the pitch rising as it rises
at ``rise_speed`` toward the surface), and its volume acceleration V̈ drives the free surface with

    aₙ(x, t) = gain · Σ_b V̈_b(t) · K(x, x_b(t)) / Φ_b,   K = d/(2π(s² + d²)^{3/2}),

the normal flow of the bubble and its negative image in the surface (d the point's height above
the bubble, s the horizontal distance); Φ_b = Ω_b/(2π), the share of that flow the free-surface
faces capture (Ω_b their solid angle at the bubble), makes ∫aₙ dS = V̈ exactly over the free surface
(rigid walls elsewhere: all of the flow leaves through the surface). Other faces get aₙ = 0.
Bubbles are given by position in the object frame; one must lie under the free surface (deeper
than its radius) and under its faces (Φ_b ≥ 0.1).

Scene table::

    [[objects.shaders]]
    type = "bubbles"
    bubbles = [ { time = 0.01, position = [0.0, 0.0, -0.006], radius = 0.002 } ]   # and/or
    bubbles_file = "bubbles.csv"       # header time,x,y,z,radius[,lifetime][,amplitude]
    generate = [ { model = "dripping", times = [0.05, 0.3], position = [0.0, 0.0, 0.0], seed = 1 },
                 { model = "pouring", rate = 200.0, position = [0.02, 0.0, 0.0], spread = 0.01 } ]
    surface_normal = [0.0, 0.0, 1.0]   # object frame
    amplitude = 0.01                   # default ε (radius amplitude / radius) of listed bubbles
    rise_speed = 0.25                  # m/s

``reset(t)`` reruns every bubble alive at t from its birth (time-parallel chunks ring on exactly);
``active_intervals`` gives each bubble from birth until it has decayed by 10⁻⁶ (or burst).
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat

from wavesolve.bubble_events import Bubble, BubbleConfig, GeneratorConfig, generate_bubbles, read_bubbles_csv
from wavesolve.bubbles import (DEFAULT_RATE, BubbleOscillators, decay_rate, minnaert_omega, solid_angle,
                               surface_kernel)
from wavesolve.errors import SceneError
from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig, ShaderContext
from wavesolve.signals import merge_intervals
from wavesolve.validation import read_named_file, validate_model

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]

#: faces whose outward normal is within 60° of the surface normal are the free surface
FREE_SURFACE_COS = 0.5
#: a bubble is silent once decayed by this factor (active_intervals); the ring time is stretched
#: by RING_MARGIN for the rise of pitch (V̈ of a fixed v grows with ω²)
SILENT = 1e-6
RING_MARGIN = 1.25
#: a bursting bubble (lifetime) fades out over min(1 ms, lifetime/4) (cos²)
BURST_FADE = 1e-3
#: smallest share Φ of the bubble's flow the free-surface faces may capture
MIN_CAPTURE = 0.1
#: the capture Φ is recomputed when a rising bubble has moved this far (m)
CAPTURE_UPDATE = 1e-4
#: bubble radii accepted (m): the closed-form thermal damping is checked against Devin for
#: 0.25–10 mm (PHYSICS.md); beyond about 1 cm bubbles are no longer spherical
RADIUS_RANGE = (5e-5, 0.02)


class BubblesShader(Shader):
    """Free-surface normal acceleration from ringing bubbles (listed, from a file, or generated)."""

    class Config(ShaderConfig):
        type: Literal["bubbles"]
        bubbles: list[BubbleConfig] = Field(default_factory=list)
        bubbles_file: str | None = Field(default=None, description="CSV time,x,y,z,radius[,lifetime][,amplitude]")
        generate: list[GeneratorConfig] = Field(default_factory=list)
        surface_normal: Vec3 = Field(default=[0.0, 0.0, 1.0], description="free-surface normal, object frame")
        amplitude: PositiveFloat = Field(default=0.01, description="default radius amplitude ε of listed bubbles")
        rise_speed: NonNegativeFloat = Field(default=0.25, description="rise speed of the bubbles (m/s)")
        rate: PositiveFloat | None = Field(default=None, description="internal step rate (Hz)")
        gain: float = 1.0

    def __init__(self, config: Config, context: ShaderContext) -> None:
        super().__init__(config, context)
        file, key = context.scene_file, context.key
        mesh = context.mesh
        if mesh is None:
            raise SceneError(file, key, "the bubbles shader needs the water body's mesh", "use it in a scene file")
        n = np.asarray(config.surface_normal, dtype=np.float64)
        if np.linalg.norm(n) == 0:
            raise SceneError(file, f"{key}.surface_normal", "the surface normal is zero", "give e.g. [0.0, 0.0, 1.0]")
        self.normal = n / np.linalg.norm(n)
        up = np.asarray(mesh.face_normals) @ self.normal >= FREE_SURFACE_COS
        if not up.any():
            raise SceneError(file, f"{key}.surface_normal", "no face of the mesh faces along surface_normal",
                             "give the direction (object frame) in which the water's free surface faces")
        self.surface_triangles = np.asarray(mesh.triangles)[up]
        self.surface_height = float(np.max(self.surface_triangles.reshape(-1, 3) @ self.normal))
        self.bubbles = self._collect(config, context)
        B = len(self.bubbles)
        pos = np.array([b.position for b in self.bubbles]).reshape(B, 3)
        radius = np.array([b.radius for b in self.bubbles])
        depth = self.surface_height - pos @ self.normal
        for b, d in zip(self.bubbles, depth):
            if not RADIUS_RANGE[0] <= b.radius <= RADIUS_RANGE[1]:
                raise SceneError(file, b.key, f"bubble radius {b.radius:g} m is outside the range the model covers",
                                 f"use radii between {RADIUS_RANGE[0]:g} and {RADIUS_RANGE[1]:g} m")
            if d <= b.radius:
                raise SceneError(file, b.key, f"bubble at {np.round(b.position, 6).tolist()} (radius {b.radius:g} m) "
                                 f"is not under the free surface (depth {d:.4g} m)",
                                 f"place it deeper than its radius below the surface plane at height "
                                 f"{self.surface_height:.4g} m along surface_normal")
        self.birth = np.array([b.time for b in self.bubbles])
        self.position0 = pos
        # highest pitch: at the end of the rise, depth 2r (ω₀/√(1 − 1/4))
        f_top = float(np.max(minnaert_omega(radius))) / math.sqrt(0.75) / (2 * math.pi)
        rate = config.rate or max(DEFAULT_RATE, 16.0 * f_top)
        if rate < 4.0 * f_top:
            raise SceneError(file, f"{key}.rate", f"rate {rate:g} Hz is too low for bubbles ringing up to "
                             f"{f_top:.0f} Hz", f"use rate ≥ {4.0 * f_top:.0f}, or omit it")
        self.bank = BubbleOscillators(radius, depth, config.rise_speed, [b.amplitude for b in self.bubbles],
                                      1.0 / rate)
        beta = decay_rate(radius, self.bank.omega(np.zeros(B)))
        ring = self.bank.tau + RING_MARGIN * math.log(1.0 / SILENT) / beta
        self.lifetime = np.array([b.lifetime for b in self.bubbles])
        self.end = self.birth + np.minimum(self.lifetime, ring)
        self.fade = np.minimum(BURST_FADE, 0.25 * self.lifetime)
        self._capture = np.zeros(B)
        self._capture_at = np.full((B, 3), np.inf)
        for i, b in enumerate(self.bubbles):
            if self._capture_of(i, pos[i]) < MIN_CAPTURE:
                raise SceneError(file, b.key, f"bubble at {np.round(b.position, 6).tolist()} is not under the free "
                                 f"surface's faces (they capture {self._capture[i]:.3g} of its flow)",
                                 "place it below the water's upward faces")
        self._mask_cache: tuple[BoundaryPoints, np.ndarray] | None = None

    def _collect(self, config: Config, context: ShaderContext) -> list[Bubble]:
        file, key = context.scene_file, context.key
        rows = [(f"{key}.bubbles[{i}]", b) for i, b in enumerate(config.bubbles)]
        if config.bubbles_file is not None:
            raw = read_named_file(file, f"{key}.bubbles_file", context.scene_dir / config.bubbles_file,
                                  "bubble file", read_bubbles_csv,
                                  "write a CSV with header time,x,y,z,radius[,lifetime][,amplitude]")
            for i, item in enumerate(raw):
                rows.append((f"{key}.bubbles_file row {i + 1}",
                             validate_model(BubbleConfig, item, file, (f"{key}.bubbles_file row {i + 1}",))))
        out = [Bubble(b.time, np.asarray(b.position, float), b.radius,
                      b.lifetime if b.lifetime is not None else math.inf,
                      b.amplitude if b.amplitude is not None else config.amplitude, k) for k, b in rows]
        for j, gen in enumerate(config.generate):
            out += generate_bubbles(gen, self.normal, context.duration, f"{key}.generate[{j}]")
        if not out:
            raise SceneError(file, key, "no bubbles: none listed, no file and no generator (or none drawn)",
                             "add bubbles = [...], bubbles_file = \"...\" or generate = [...]")
        return sorted(out, key=lambda b: b.time)

    # -- geometry -------------------------------------------------------------------------------

    def _capture_of(self, i: int, position: np.ndarray) -> float:
        """Φ = Ω/(2π) of the free-surface faces at the bubble's position (cached while it moves < 0.1 mm)."""
        if np.linalg.norm(position - self._capture_at[i]) > CAPTURE_UPDATE:
            self._capture[i] = float(np.sum(solid_angle(self.surface_triangles, position))) / (2.0 * math.pi)
            self._capture_at[i] = position
        return self._capture[i]

    def positions(self, t: float, idx: np.ndarray) -> np.ndarray:
        """Bubble positions (len(idx), 3) at time t (object frame): risen along the surface normal."""
        rise = self.bank.depth0[idx] - self.bank.depth(t - self.birth[idx], idx)
        return self.position0[idx] + np.outer(rise, self.normal)

    def _surface_mask(self, points: BoundaryPoints) -> np.ndarray:
        if self._mask_cache is None or self._mask_cache[0] is not points:
            self._mask_cache = (points, points.normal_local @ self.normal >= FREE_SURFACE_COS)
        return self._mask_cache[1]

    # -- time stepping --------------------------------------------------------------------------

    def _samples(self, t: float, idx: np.ndarray) -> np.ndarray:
        """Sample index of bubbles idx at time t (their local clocks), capped at their end."""
        s = np.minimum(t, self.end[idx]) - self.birth[idx]
        return np.floor(np.maximum(s, 0.0) / self.bank.dt + 1e-9).astype(np.int64)

    def _advance(self, t: float, idx: np.ndarray) -> None:
        """Step bubbles idx to their samples at t; one step back is served from the current state
        (the solver's fresh cells ask for t − Δt), further back reruns them (reset)."""
        want = self._samples(t, idx)
        if np.any(want < self.bank.j[idx] - 1):
            self.reset(t)
            return
        target = self.bank.j.copy()
        target[idx] = np.maximum(want, self.bank.j[idx])
        self.bank.advance_to(target)

    def active(self, t: float) -> np.ndarray:
        """Indices of the bubbles sounding at time t."""
        return np.flatnonzero((self.birth <= t) & (t < self.end))

    def volume_acceleration(self, t: float, idx: np.ndarray | None = None) -> np.ndarray:
        """V̈ (m³/s²) of bubbles idx (default: those active) at time t, burst fade included."""
        idx = self.active(t) if idx is None else np.asarray(idx)
        if idx.size == 0:
            return np.zeros(0)
        self._advance(t, idx)
        s = t - self.birth[idx]
        a = self.bank.acceleration(s, idx)
        life, fade = self.lifetime[idx], self.fade[idx]
        u = np.clip((s - (life - fade)) / fade, 0.0, 1.0)  # life = inf: u = 0, no fade
        return a * np.cos(0.5 * math.pi * u) ** 2

    def reset(self, t: float) -> None:
        """Restart at t: every bubble born by t is rerun from its birth (exact state)."""
        self.bank.restart()
        idx = np.flatnonzero(self.birth <= t)
        if idx.size:
            target = np.zeros(len(self.bubbles), dtype=np.int64)
            target[idx] = self._samples(t, idx)
            self.bank.advance_to(target)

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        out = np.zeros(len(points))
        idx = self.active(t)
        if idx.size == 0 or len(points) == 0:
            return out
        vdd = self.volume_acceleration(t, idx)
        pos = self.positions(t, idx)
        share = np.array([self._capture_of(i, p) for i, p in zip(idx, pos)])
        mask = self._surface_mask(points)
        kernel = surface_kernel(points.position_local[mask], pos, self.normal)
        out[mask] = self.config.gain * (kernel @ (vdd / share))
        return out

    def normal_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """normal_acceleration at K increasing times, the oscillators stepped once for the block:
        the same states, samples and capture updates as time by time (so equal up to rounding)."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros((len(times), len(points)))
        live = (self.birth[None, :] <= times[:, None]) & (times[:, None] < self.end[None, :])
        idx = np.flatnonzero(live.any(axis=0))
        if idx.size == 0 or len(points) == 0:
            return out
        live = live[:, idx]
        bank = self.bank
        j0 = bank.j[idx]
        s_cap = np.minimum(times[:, None], self.end[idx]) - self.birth[idx]
        want = np.floor(np.maximum(s_cap, 0.0) / bank.dt + 1e-9).astype(np.int64)
        if np.any(live & (want < j0 - 1)):          # asked far back: the per-time path reruns (reset)
            return super().normal_acceleration_block(times, points)
        # sample of each bubble at each time, as the per-time _advance leaves it
        j = np.maximum.accumulate(np.vstack([j0, np.where(live, want, j0)]), axis=0)[1:]
        start, v_hist, w_hist = bank.advance_recording(j[-1], idx)
        cols = np.arange(idx.size)
        v, w = v_hist[j - start, cols], w_hist[j - start, cols]
        s = times[:, None] - self.birth[idx]
        a = bank.acceleration_from(s, j, v, w, idx)
        life, fade = self.lifetime[idx], self.fade[idx]
        u = np.clip((s - (life - fade)) / fade, 0.0, 1.0)
        vdd = np.where(live, a * np.cos(0.5 * math.pi * u) ** 2, 0.0)
        rise = bank.depth0[idx] - bank.depth(s, idx)
        pos = self.position0[idx] + rise[..., None] * self.normal            # (K, B, 3)
        share = np.ones(vdd.shape)
        for k, b in zip(*np.nonzero(live)):          # in the per-time order: time, then bubble
            share[k, b] = self._capture_of(int(idx[b]), pos[k, b])
        mask = self._surface_mask(points)
        kernel = surface_kernel(points.position_local[mask], pos, self.normal)   # (K, n, B)
        out[:, mask] = self.config.gain * np.einsum("knb,kb->kn", kernel, vdd / share)
        return out

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Each bubble from its birth until it has decayed by 1e-6 (or burst)."""
        spans = merge_intervals([(float(a), float(b)) for a, b in zip(self.birth, self.end)])
        return [(max(a, t0), min(b, t1)) for a, b in spans if b > t0 and a < t1]
