"""wavesolve: wave-based sound synthesis for computer animation.

    import wavesolve
    scene = wavesolve.load_scene("scenes/validation/pulsating_sphere.toml")
    result = wavesolve.simulate(scene)
    p = result.listener("near")          # pressure in Pa at result.sample_rate
    result.save("out.h5")
"""
import logging

from .api import __version__, simulate
from .errors import InstabilityError, SceneError, WavesolveError
from .result import Result
from .scene import Scene, load_scene

logging.getLogger("wavesolve").addHandler(logging.NullHandler())

__all__ = ["__version__", "load_scene", "simulate", "Result", "Scene", "SceneError", "InstabilityError",
           "WavesolveError"]
