"""wavesolve: wave-based sound synthesis for computer animation.

    import wavesolve
    scene = wavesolve.load_scene("scenes/validation/pulsating_sphere.toml")
    result = wavesolve.simulate(scene)
    p = result.listener("near")          # pressure in Pa at result.sample_rate
    result.save("out.h5")
"""
import importlib
import logging

from .errors import InstabilityError, SceneError, WavesolveError
from .version import __version__

logging.getLogger("wavesolve").addHandler(logging.NullHandler())

# the rest loads on first use (numerics, meshes and plotting take about a second to import), so
# that `wavesolve --help` and `import wavesolve.errors` stay quick
_LAZY = {"load_scene": "scene", "Scene": "scene", "simulate": "api", "Result": "result"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'wavesolve' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["__version__", "load_scene", "simulate", "Result", "Scene", "SceneError", "InstabilityError",
           "WavesolveError"]
