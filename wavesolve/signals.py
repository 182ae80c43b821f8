"""Time signals s(t) used by shaders: built-in waveforms and WAV files.

A signal table in a scene file is either a waveform::

    signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }
    signal = { waveform = "ricker", frequency = 2500.0, amplitude = 200.0 }
    signal = { waveform = "sine_burst", frequency = 1000.0, amplitude = 50.0, cycles = 8 }

or a file (a mono float WAV in SI units, any sample rate)::

    signal = { file = "accel.wav", gain = 1.0, start = 0.0 }

or a train of copies of one waveform (impacts, drips), s(t) = Σᵢ gᵢ·pulse(t − tᵢ)::

    signal = { waveform = "pulse_train", times = [0.0, 0.012, 0.03], gains = [1.0, 0.5, 0.8],
               pulse = { waveform = "gaussian_derivative", frequency = 2000.0, amplitude = 100.0 } }

Every signal knows when it is active: ``active_intervals(t0, t1)`` lists the (start, end) times
in [t0, t1) outside of which it is zero (to within 1e-6 of its peak). Time-parallel planning
(``wavesolve.chunks``) cuts a scene at the silent gaps between them.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from .audio import read_float_wav, resample

#: WAV signals are upsampled to at least this rate before linear interpolation in time (Hz).
_FILE_INTERPOLATION_RATE = 400_000.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GaussianDerivative(_Strict):
    """s(t) = A·(−τ/σ)·exp(½ − τ²/2σ²), τ = t − delay, σ = 1/(2πf): peak A, spectrum peak at f.

    The default delay 5σ makes the pulse start from |s| < 4e-5·A.
    """

    waveform: Literal["gaussian_derivative"]
    frequency: PositiveFloat = Field(description="spectral peak (Hz)")
    amplitude: float = Field(description="peak value, in the shader's unit")
    delay: float | None = Field(default=None, ge=0.0, description="centre time (s); default 5σ")

    def sigma(self) -> float:
        return 1.0 / (2.0 * math.pi * self.frequency)

    def centre(self) -> float:
        return self.delay if self.delay is not None else 5.0 * self.sigma()

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        s = self.sigma()
        tau = (np.asarray(t, dtype=np.float64) - self.centre()) / s
        return self.amplitude * (-tau) * np.exp(0.5 - 0.5 * tau * tau)

    def start_time(self) -> float:
        return self.centre() - 6.0 * self.sigma()

    def end_time(self) -> float:
        return self.centre() + 6.0 * self.sigma()

    def zero_outside(self) -> tuple[float, float]:
        """(start, end) times (s) outside of which s(t) is exactly 0.0: beyond 40σ from the centre
        exp(½ − τ²/2) underflows to zero (it does from about 38.6σ)."""
        return self.centre() - 40.0 * self.sigma(), self.centre() + 40.0 * self.sigma()

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _clip([(self.start_time(), self.end_time())], t0, t1)


class Ricker(_Strict):
    """s(t) = A·(1 − 2u²)·exp(−u²), u = πf(t − delay): peak A at the delay, spectrum peak at f.

    The second derivative of a Gaussian: as an acceleration it moves a surface out and back, so its
    first and second integrals (velocity, displacement) return to zero. A click with no net motion
    leaves no steady flow and no static displacement behind (README, Travelling sources). The
    default delay 1.3/f makes the pulse start from |s| < 1e-5·A.
    """

    waveform: Literal["ricker"]
    frequency: PositiveFloat = Field(description="spectral peak (Hz)")
    amplitude: float = Field(description="peak value, in the shader's unit")
    delay: float | None = Field(default=None, ge=0.0, description="centre time (s); default 1.3/f")

    def centre(self) -> float:
        return self.delay if self.delay is not None else 1.3 / self.frequency

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        u2 = (math.pi * self.frequency * (np.asarray(t, dtype=np.float64) - self.centre())) ** 2
        return self.amplitude * (1.0 - 2.0 * u2) * np.exp(-u2)

    def start_time(self) -> float:
        return self.centre() - 1.5 / self.frequency

    def end_time(self) -> float:
        return self.centre() + 1.5 / self.frequency

    def zero_outside(self) -> tuple[float, float]:
        """(start, end) times (s) outside of which s(t) is exactly 0.0: exp(−u²) underflows to zero
        from u ≈ 27.3, 8.7/f from the centre."""
        return self.centre() - 9.0 / self.frequency, self.centre() + 9.0 / self.frequency

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _clip([(self.start_time(), self.end_time())], t0, t1)


class SineBurst(_Strict):
    """s(t) = A·sin(2πf(t−start))·w(t), w a Hann window over ``cycles`` periods from ``start``."""

    waveform: Literal["sine_burst"]
    frequency: PositiveFloat
    amplitude: float
    cycles: PositiveFloat = 8.0
    start: float = Field(default=0.0, ge=0.0)

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64) - self.start
        length = self.cycles / self.frequency
        inside = (t >= 0.0) & (t <= length)
        window = 0.5 * (1.0 - np.cos(2.0 * math.pi * t / length))
        return np.where(inside, self.amplitude * np.sin(2.0 * math.pi * self.frequency * t) * window, 0.0)

    def start_time(self) -> float:
        return self.start

    def end_time(self) -> float:
        return self.start + self.cycles / self.frequency

    def zero_outside(self) -> tuple[float, float]:
        """(start, end) times (s) outside of which s(t) is exactly 0.0 (the window)."""
        return self.start_time(), self.end_time()

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _clip([(self.start_time(), self.end_time())], t0, t1)


class PulseTrain(_Strict):
    """s(t) = Σᵢ gᵢ·pulse(t − tᵢ): copies of one waveform started at ``times`` (s), scaled by ``gains``.

    ``pulse`` is a waveform table (gaussian_derivative, ricker or sine_burst) whose own time origin is
    moved to each tᵢ; ``gains`` defaults to all ones.
    """

    waveform: Literal["pulse_train"]
    pulse: Union[GaussianDerivative, Ricker, SineBurst] = Field(discriminator="waveform")
    times: list[float] = Field(min_length=1, description="start of each copy (s)")
    gains: list[float] | None = Field(default=None, description="factor of each copy; default 1")

    @model_validator(mode="after")
    def _same_lengths(self) -> "PulseTrain":
        if self.gains is not None and len(self.gains) != len(self.times):
            raise ValueError(f"gains has {len(self.gains)} entries but times has {len(self.times)}")
        return self

    def _gains(self) -> list[float]:
        return self.gains if self.gains is not None else [1.0] * len(self.times)

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """The sum in the order of ``times``, leaving out the copies that are exactly zero at every
        t asked for (adding 0.0 changes no sum, so the result is the same to the bit)."""
        t = np.asarray(t, dtype=np.float64)
        times, gains, (lo, hi) = self._copies
        total = np.zeros(t.shape)
        if t.size == 0:
            return total
        first, last = float(t.min()), float(t.max())
        slack = 1e-9 * (1.0 + max(abs(first), abs(last)))     # s: far above t − tᵢ's rounding
        for i in np.flatnonzero((times >= first - hi - slack) & (times <= last - lo + slack)):
            total = total + gains[i] * self.pulse(t - times[i])
        return total

    @functools.cached_property
    def _copies(self) -> tuple[np.ndarray, list[float], tuple[float, float]]:
        """Start times (array), gains, and the pulse's exactly-zero bounds (made once)."""
        return np.asarray(self.times, dtype=np.float64), self._gains(), self.pulse.zero_outside()

    def start_time(self) -> float:
        return min(self.times) + self.pulse.start_time()

    def end_time(self) -> float:
        return max(self.times) + self.pulse.end_time()

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        spans = [(ti + self.pulse.start_time(), ti + self.pulse.end_time())
                 for ti, g in zip(self.times, self._gains()) if g != 0.0]
        return _clip(merge_intervals(spans), t0, t1)


class FileSignal(_Strict):
    """A mono float WAV (SI units), scaled by ``gain`` and starting at scene time ``start`` (s)."""

    file: str
    gain: float = 1.0
    start: float = Field(default=0.0, ge=0.0)


SignalConfig = Union[GaussianDerivative, Ricker, SineBurst, PulseTrain, FileSignal]


class SampledSignal:
    """A WAV signal, upsampled band-limited once, then linearly interpolated in time."""

    def __init__(self, config: FileSignal, base_dir: Path) -> None:
        data, rate = read_float_wav(base_dir / config.file)
        factor = max(1, math.ceil(_FILE_INTERPOLATION_RATE / rate))
        self._rate = rate * factor
        self._samples = config.gain * resample(data, rate, self._rate)
        self._start = config.start
        self._duration = len(data) / rate

    def highpass(self, cutoff: float, order: int = 2) -> None:
        """Remove content below ``cutoff`` Hz (Butterworth, applied forward and backward: zero phase)."""
        from scipy.signal import butter, sosfiltfilt

        sos = butter(order, cutoff, btype="highpass", fs=self._rate, output="sos")
        self._samples = sosfiltfilt(sos, self._samples)

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """Linear interpolation of the upsampled samples, 0 outside them: np.interp's arithmetic
        on unit sample spacing (s[j] at a sample, else (s[j+1] − s[j])·(x − j) + s[j]), without
        the pass over the whole signal np.interp makes on every call."""
        pos = (np.asarray(t, dtype=np.float64) - self._start) * self._rate
        samples = self._samples
        out = np.zeros(pos.shape)
        inside = (pos >= 0.0) & (pos <= len(samples) - 1)
        x = pos[inside]
        j = np.floor(x).astype(np.int64)
        on_sample = x == j
        nxt = np.minimum(j + 1, len(samples) - 1)               # read only where not on a sample
        value = (samples[nxt] - samples[j]) * (x - j) + samples[j]
        out[inside] = np.where(on_sample, samples[j], value)
        return out if out.ndim else out[()]

    def start_time(self) -> float:
        return self._start

    def end_time(self) -> float:
        return self._start + self._duration

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _clip([(self.start_time(), self.end_time())], t0, t1)


def merge_intervals(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, non-overlapping union of (start, end) intervals."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _clip(spans: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(max(a, t0), min(b, t1)) for a, b in spans if b > t0 and a < t1]


def build_signal(config: SignalConfig, base_dir: Path):
    """A callable s(t) for a validated signal table (files resolved against ``base_dir``)."""
    if isinstance(config, FileSignal):
        return SampledSignal(config, base_dir)
    return config


_WAVEFORMS = {"gaussian_derivative": GaussianDerivative, "ricker": Ricker, "sine_burst": SineBurst,
              "pulse_train": PulseTrain}


def parse_signal(data: object, file: str, key: str, base_dir: Path):
    """Validate a signal table found at ``key`` of ``file`` and return a callable s(t).

    Raises SceneError (naming file and key) on any problem, including an unreadable WAV.
    """
    from .errors import SceneError
    from .validation import did_you_mean, validate_model

    if not isinstance(data, dict):
        raise SceneError(file, key, f"expected a table, got {data!r}",
                         'write e.g. { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }')
    if "file" in data:
        config = validate_model(FileSignal, data, file, (key,))
        path = base_dir / config.file
        if not path.is_file():
            raise SceneError(file, f"{key}.file", f"signal file '{path}' does not exist",
                             "give a path relative to the scene file")
        try:
            return SampledSignal(config, base_dir)
        except ValueError as exc:
            raise SceneError(file, f"{key}.file", str(exc), "export the signal as a mono 32-bit float WAV") from None
    name = data.get("waveform")
    if name not in _WAVEFORMS:
        guess = did_you_mean(str(name), _WAVEFORMS) if name is not None else None
        problem = "missing 'waveform' or 'file'" if name is None else f"unknown waveform '{name}'"
        fix = f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(_WAVEFORMS) + ", or give file = \"x.wav\""
        raise SceneError(file, f"{key}.waveform" if name is not None else key, problem, fix)
    return validate_model(_WAVEFORMS[name], data, file, (key,))
