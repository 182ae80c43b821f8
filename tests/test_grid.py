"""The grid's placement: the scene's box rounded up to whole cells, padded along z at its top.

Geometry only, exact: cell centres are origin + h·(i, j, k), so a padded grid that keeps the
unpadded origin holds every cell of the unpadded one at the same place (compared to 1e-12 m).
"""
from __future__ import annotations

import numpy as np
import pytest

from wavesolve.grid import Z_CELLS_MULTIPLE, Grid
from wavesolve.scene import parse_scene


@pytest.mark.parametrize("ground", [None, -0.105])
@pytest.mark.parametrize("z_size,layer", [(0.21, 8), (0.2, 8), (0.23, 5), (0.22, 6)])
def test_grid_is_padded_along_z_at_the_top_only(z_size, layer, ground):
    """nz (layer included) becomes a multiple of Z_CELLS_MULTIPLE with fewer than that many cells
    added, all above the requested box: origin, x and y, and the interior's bottom face are those of
    the unpadded grid; the top face moves up by the added cells."""
    h, center = 0.005, np.array([0.01, -0.02, 0.0])
    size = np.array([0.3, 0.25, z_size])
    if ground is not None:
        center[2] = ground + z_size / 2
    plain = Grid.build(center, size, h, 343.0, layer, ground_height=ground)
    padded = Grid.build(center, size, h, 343.0, layer, ground_height=ground, z_multiple=Z_CELLS_MULTIPLE)
    added = padded.shape[2] - plain.shape[2]
    assert padded.shape[2] % Z_CELLS_MULTIPLE == 0 and 0 <= added < Z_CELLS_MULTIPLE
    assert padded.shape[:2] == plain.shape[:2]
    np.testing.assert_allclose(padded.origin, plain.origin, rtol=0, atol=1e-12)
    lo, hi = padded.interior_bounds(), plain.interior_bounds()
    np.testing.assert_allclose(lo[0], hi[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lo[1] - hi[1], [0.0, 0.0, added * h], rtol=0, atol=1e-12)
    assert padded.ground == plain.ground


def test_scene_grids_are_padded():
    """A scene whose box is 43 cells tall (59 with the layer) gets 60 cells along z."""
    scene = parse_scene("""
[simulation]
duration = 0.001
cell_size = 0.005
[domain]
size = [0.2, 0.2, 0.215]
[[listeners]]
name = "l"
position = [0.0, 0.0, 0.0]
""", "padded.toml")
    assert scene.grid.shape == (56, 56, 60)
