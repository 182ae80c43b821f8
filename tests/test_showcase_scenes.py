"""The rigid-body showcase scenes load (their shaders, impact files, signals and computed modes)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENES
from new_shaders import register_new_shaders

import wavesolve


def test_speaker_scene_loads(monkeypatch):
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(SCENES / "showcase" / "speaker_chirp.toml")
    assert scene.objects[0].shaders[0].active_intervals(0.0, 1.0) == [(0.0, 0.25)]


def test_bar_drop_scene_loads_with_computed_modes(monkeypatch, tmp_path):
    """Computes the bar's modes (5 mm, about 10 s) into a private cache."""
    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path))
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(SCENES / "showcase" / "bar_drop.toml")
    noise, modal = scene.objects[0].shaders
    assert len(noise.impacts) == 4 and modal.frequencies[0] == pytest.approx(1286.0, rel=0.01)
    assert np.all(modal.frequencies <= 7000.0)
