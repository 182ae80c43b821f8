"""Exceptions raised for bad input and failed runs."""
from __future__ import annotations


class WavesolveError(Exception):
    """Base class of all wavesolve errors."""


class SceneError(WavesolveError):
    """A scene file (or its data) is invalid; raised before any compute starts.

    The message names the file, the key, what was expected and how to fix it.
    """

    def __init__(self, file: str, key: str, problem: str, fix: str | None = None) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        self.fix = fix
        text = f"{self.file}: [{key}] {problem}" if key else f"{self.file}: {problem}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class SceneErrors(SceneError):
    """Several independent problems found in one scene file, reported together."""

    def __init__(self, errors: list[SceneError]) -> None:
        self.errors = errors
        first = errors[0]
        Exception.__init__(self, "\n".join(str(e) for e in errors))
        self.file, self.key, self.problem, self.fix = first.file, first.key, first.problem, first.fix


class InstabilityError(WavesolveError):
    """The field blew up (NaN/Inf or runaway pressure) during a run."""


class ChunkError(WavesolveError):
    """A time-parallel run cannot go on: a bad chunk plan, a chunk that failed every attempt, or
    chunk part files that do not belong together (another scene or plan, a missing chunk)."""


class ChunkFailed(ChunkError):
    """A chunk's worker died on every allowed attempt (finished chunks are kept)."""
