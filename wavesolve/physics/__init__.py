"""From a rigid-body physics engine (PyBullet) to sound.

``load_setup`` reads a setup file (objects with meshes, materials, initial poses and velocities,
a ground plane), ``run_engine`` simulates it, ``extract_events`` merges the engine's contact
impulses into impacts, ``extract_touches`` follows the continuous (resting, rolling, sliding)
contact that remains, ``body_impacts`` puts them in each object's frame, and ``write_scene``
writes motion files, impact files, modes and a ready scene. ``read_bullet_logs`` imports
PyBullet's own state logs instead of running the engine. The engine is an optional dependency:
``pip install "wavesolve[physics]"``; this package imports without it.
"""
from .engine import GROUND, INSTALL_HINT, Recording, require_pybullet, run_engine
from .events import BodyImpacts, ContactEvent, body_impacts, extract_events
from .setup_file import PhysicsSetup, load_setup
from .touches import Touch, extract_touches

__all__ = ["GROUND", "INSTALL_HINT", "BodyImpacts", "ContactEvent", "PhysicsSetup", "Recording", "Touch",
           "body_impacts", "extract_events", "extract_touches", "load_setup", "require_pybullet", "run_engine"]
