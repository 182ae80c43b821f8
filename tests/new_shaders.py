"""Make the shaders of this package's pyproject.toml usable in tests before the package is reinstalled.

Entry points come from the installed metadata; a shader added to ``pyproject.toml`` appears there
only after ``pip install -e .``. ``register_new_shaders(monkeypatch)`` adds every shader listed in
pyproject.toml that the installed metadata lacks to the registry that scene loading consults.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def listed_shaders() -> dict[str, str]:
    """name → "module:Class" of every shader entry point in pyproject.toml."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(data["project"]["entry-points"]["wavesolve.shaders"])


def load_listed(target: str):
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


class _Entry:
    def __init__(self, target: str) -> None:
        self.target = target

    def load(self):
        return load_listed(self.target)


def register_new_shaders(monkeypatch) -> None:
    import wavesolve.scene as scene_module
    from wavesolve import shading

    installed = shading.available_shaders()
    extra = {name: _Entry(t) for name, t in listed_shaders().items() if name not in installed}

    def available():
        return {**shading.available_shaders(), **extra}

    def shader_class(name):
        return extra[name].load() if name in extra else shading.shader_class(name)

    monkeypatch.setattr(scene_module, "available_shaders", available)
    monkeypatch.setattr(scene_module, "shader_class", shader_class)
