"""Shared fixtures: writing scene files, running the CLI, skipping GPU tests without a GPU."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The suite runs Numba's workqueue threading layer (unless NUMBA_THREADING_LAYER is set), before
# anything starts Numba's threads: a CI machine's cores may be shared, and there OpenMP's spinning
# threads ran 2.5× slower (bench/RESULTS.md, eleventh session). Results do not depend on the layer.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
if "numba" in sys.modules:
    sys.modules["numba"].config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]
# Under pytest-xdist (`-n auto`: one worker per core) each worker gets its share of the cores for
# Numba's threads (unless NUMBA_NUM_THREADS is set), not a pool as wide as the machine: on a 16-core
# machine that would be 256 threads. On the 2-core VM, 2 workers × 1 thread ran the suite in 264 s
# against 298 s with 2 × 2 (thirty-fourth session). The compiled step's splits among threads are
# tested with explicit splits (test_kernels_cpu), whatever the thread count.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "numba" not in sys.modules:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, _cores // _WORKERS)))

REPO = Path(__file__).resolve().parents[1]
SCENES = REPO / "scenes"
sys.path.insert(0, str(Path(__file__).parent))


#: A travelling box: a sphere (a = 4 cm, h = 2 cm) flying at 38 m/s diagonally, so its box shifts
#: along all three axes, with a listener 3 m away (test_travelling's long path; the CUDA driver's
#: travelling-box checks in test_kernels_cuda).
LONG_PATH_SCENE = """
[simulation]
duration = 0.02
cell_size = 0.02
sample_rate = 16000.0
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
motion = { type = "constant_velocity", velocity = [36.0, -12.0, 6.0] }
[objects.domain]
follow = true
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "gaussian_derivative", frequency = 400.0, amplitude = 100.0 }
[[listeners]]
name = "far"
position = [0.0, 3.0, 0.0]
"""


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU with CuPy on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def write_scene(tmp_path):
    """Write a scene file (dedented TOML) into tmp_path and return its path."""

    def write(text: str, name: str = "scene.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


#: Radius (m) of the ``hemisphere`` fixture's mesh.
HEMISPHERE_RADIUS = 0.05


@pytest.fixture(scope="session")
def hemisphere(tmp_path_factory) -> Path:
    """A closed hemisphere mesh (OBJ) of radius HEMISPHERE_RADIUS: its flat face on z = 0, the dome
    above (a quarter circle of 17 points revolved in 48 sections). Resting on a rigid ground it is
    half of a sphere, whose free-field solutions are exact (tests/exact.py)."""
    import numpy as np
    import trimesh

    angle = np.linspace(0.0, np.pi / 2, 17)
    profile = np.vstack([[0.0, 0.0], np.c_[HEMISPHERE_RADIUS * np.cos(angle), HEMISPHERE_RADIUS * np.sin(angle)]])
    path = tmp_path_factory.mktemp("hemisphere") / "hemisphere.obj"
    trimesh.creation.revolve(profile, sections=48).export(path)
    return path


@pytest.fixture
def cli():
    """Run ``wavesolve ARGS`` as a user would (the installed console script's module)."""

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "wavesolve.cli", *map(str, args)], cwd=cwd,
                              capture_output=True, text=True, timeout=600)

    return run
