"""Every shader listed in pyproject.toml is found through the installed entry points.

Passes once the package is (re)installed (`pip install -e .`): entry points live in the installed
metadata, not in the source tree.
"""
from __future__ import annotations

import pytest
from new_shaders import listed_shaders, load_listed

from wavesolve.shading import Shader, available_shaders, shader_class


@pytest.mark.parametrize("name, target", sorted(listed_shaders().items()))
def test_listed_shader_is_installed_and_resolves(name, target):
    assert issubclass(load_listed(target), Shader)  # the source tree's class imports
    assert name in available_shaders(), f"'{name}' is not installed: run pip install -e ."
    cls = shader_class(name)
    module, _, qualname = target.partition(":")
    assert (cls.__module__, cls.__qualname__) == (module, qualname)
