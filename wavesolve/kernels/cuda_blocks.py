"""Blocks of steps run on the GPU without the host in the loop.

Driving every step from Python costs the CuPy backend about 150–200 µs a step (kernel launches,
uploads, checks), far more than the kernels of a sound-synthesis grid (88³: tens of µs). Where the
geometry does not move and there are no point sources, the host's only per-step work is the
shaders' boundary accelerations, which do not depend on the field. So :class:`BlockRunner` runs
the steps in blocks of ``BLOCK_STEPS``:

1. the host copies the block's boundary inputs (aₙ of the g rows, then each object's Q̇) into a
   pinned (K, g + objects) buffer from the blocks of ``MOTION_BLOCK`` steps that ``Simulation``
   keeps (``Simulation.accelerations_into``; one ``normal_acceleration_block`` call per shader a
   kept block, vectorised by the built-in shaders), so that each step takes the values a step run
   on its own would;
2. one copy takes it to the device, one launch runs the block's K steps — K calls of
   ``Simulation._advance`` recorded once per buffer slot as a CUDA graph — and one copy brings
   the (K, listeners) samples back;
3. while the device runs block b, the host evaluates block b + 1 (two slots, each reused only
   once its previous block has finished).

After each block the field's peak |p| is reduced on the device and read when its slot is reused:
Simulation's instability check, one block late. On the host build of the kernels (the tests) the
same runner drives the same ``Simulation._advance`` through :class:`HostQueue`, where a recorded
block is the Python function itself, replayed.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constants import INSTABILITY_PRESSURE
from ..errors import InstabilityError

#: Steps per block (even: a block leaves p and p_prev in the buffers it found them in).
BLOCK_STEPS = 128


class HostQueue:
    """The host build's queue: work runs at once; a recorded block is its function. ``peak(a)``
    gives max |a| (the backend's ``device_peak``)."""

    def __init__(self, peak: Callable[[np.ndarray], Any]) -> None:
        self._peak = peak

    def begin(self) -> None:
        """Before the first block (nothing to order on the host)."""

    def end(self) -> None:
        """After the last block (nothing to wait for on the host)."""

    def record(self, fn: Callable[[], None]) -> Callable[[], None]:
        return fn

    def launch(self, program: Callable[[], None]) -> None:
        program()

    def pinned(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)

    def upload(self, device: np.ndarray, host: np.ndarray) -> None:
        device[...] = host

    def download(self, host: np.ndarray, device: np.ndarray) -> None:
        host[...] = device

    def peak(self, p: np.ndarray) -> Any:
        return self._peak(p)

    def mark(self) -> None:
        return None

    def wait(self, token: None) -> None:
        """Nothing to wait for: host work is done when called."""


class CupyQueue:
    """A CuPy stream: blocks recorded as CUDA graphs, copies through pinned host memory, events
    marking each block's end; ``peak(a)`` as HostQueue's, queued on the stream."""

    def __init__(self, cupy: Any, peak: Callable[[Any], Any]) -> None:
        self.cupy = cupy
        self._peak = peak
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def begin(self) -> None:
        """Work queued earlier on other streams (the fields' set-up, single steps) finishes first."""
        self.cupy.cuda.runtime.deviceSynchronize()

    def end(self) -> None:
        self.stream.synchronize()

    def record(self, fn: Callable[[], None]) -> Any:
        with self.stream:
            self.stream.begin_capture()
            try:
                fn()
            finally:
                graph = self.stream.end_capture()
        return graph

    def launch(self, program: Any) -> None:
        program.launch(self.stream)

    def pinned(self, shape: tuple[int, ...]) -> np.ndarray:
        import cupyx

        return cupyx.zeros_pinned(shape, dtype=np.float64)

    def upload(self, device: Any, host: np.ndarray) -> None:
        device.set(host, stream=self.stream)

    def download(self, host: np.ndarray, device: Any) -> None:
        device.get(stream=self.stream, out=host, blocking=False)

    def peak(self, p: Any) -> Any:
        with self.stream:
            return self._peak(p)

    def mark(self) -> Any:
        event = self.cupy.cuda.Event(disable_timing=True)
        event.record(self.stream)
        return event

    def wait(self, token: Any) -> None:
        token.synchronize()


class BlockRunner:
    """Runs a Simulation's steps in recorded blocks of K (module docstring).

    Attributes:
        K: steps per block.
        accel: per slot, the device's (K, g + objects) boundary inputs (``GhostCells.inputs``).
        samples: per slot, the device's (K, listeners) samples (Pa).
    """

    def __init__(self, backend, sim, steps: int | None = None) -> None:
        steps = BLOCK_STEPS if steps is None else steps
        if steps % 2:
            raise ValueError("a block must hold an even number of steps")
        xp = backend.xp
        self.K = steps
        self.queue = backend.queue()
        g = max(sim.ghosts.inputs, 1)
        listeners = len(sim.probes.weights)
        self.accel = [xp.zeros((steps, g), dtype=np.float64) for _ in range(2)]
        self.samples = [xp.zeros((steps, listeners), dtype=np.float64) for _ in range(2)]
        self.host_accel = [self.queue.pinned((steps, g)) for _ in range(2)]
        self.host_samples = [self.queue.pinned((steps, listeners)) for _ in range(2)]
        # recorded blocks per buffers at their start (the field holding pⁿ, the layer's face
        # velocities read first): a graph keeps the buffers it was recorded with, and an odd number
        # of single steps between runs swaps p and p_prev, and the velocity buffers with them
        self.programs: dict[tuple, list[Any]] = {}
        self._pending: list[Any] = [None, None]

    def _block(self, sim, slot: int) -> None:
        """The device work of K steps: what is recorded once per slot."""
        accel, samples = self.accel[slot], self.samples[slot]
        for k in range(self.K):
            sim._advance(accel[k], samples[k])

    def run(self, sim, out: np.ndarray, bar: Any) -> int:
        """Advance ``sim`` by as many whole blocks as ``out`` (listeners × steps) has room for,
        writing their samples into ``out``; returns the number of steps run."""
        K = self.K
        blocks = out.shape[1] // K
        if blocks == 0:
            return 0
        queue = self.queue
        queue.begin()
        # the buffers a block starts from: pⁿ's, and the face velocities' the field update reads
        key = (id(sim.p), id(getattr(sim._update, "v_aux", None)))
        if key not in self.programs:
            self.programs[key] = [queue.record(lambda s=s: self._block(sim, s)) for s in range(2)]
        programs = self.programs[key]
        g = sim.ghosts.inputs
        try:
            for b in range(blocks):
                slot = b % 2
                self._finish(sim, out, slot)
                host = self.host_accel[slot]
                if g:
                    sim.accelerations_into(host)
                queue.upload(self.accel[slot], host)
                queue.launch(programs[slot])
                peak = queue.peak(sim.p)
                queue.download(self.host_samples[slot], self.samples[slot])
                self._pending[slot] = (queue.mark(), b * K, peak)
                sim.n += K
                bar.update(K)
            for slot in range(2):
                self._finish(sim, out, slot)
        finally:
            queue.end()
            self._pending = [None, None]
        return blocks * K

    def _finish(self, sim, out: np.ndarray, slot: int) -> None:
        """Wait for the slot's last block; store its samples; check its peak |p|."""
        if self._pending[slot] is None:
            return
        token, first, peak = self._pending[slot]
        self._pending[slot] = None
        self.queue.wait(token)
        out[:, first:first + self.K] = self.host_samples[slot].T
        peak = float(peak)
        if not np.isfinite(peak) or peak > INSTABILITY_PRESSURE:
            self.queue.end()
            sim.check_stability()
            raise InstabilityError(f"the simulation became unstable before t = {sim.time:.6g} s "
                                   f"(max |p| = {peak:.3g} Pa); lower simulation.courant (0.5 is safe)")
