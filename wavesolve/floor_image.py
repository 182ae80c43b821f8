"""Mirror images, in a rigid ground, of the objects that touch it: what the boundary system needs.

The floor is the method of images on the grid: the rows under it repeat the rows above
(``Backend.mirror_floor``), so above the floor the field is the free field of the scene together
with its mirror image. For an object that reaches into the first row of cells that holds only if
the cells under the floor are classified as its image's cells. Classified against the object
alone they are air: its bottom row of cells becomes ghost cells of its bottom faces (a boundary
condition imposed towards air that is not there), and the image stencils of its ghost cells read
mirrored copies of solid cells. A pulsating hemisphere resting on the floor radiated 10 % less
than its free-field image pair, the full sphere (tests/test_ground.py).

So an object that comes within ``FLOOR_IMAGE_CELLS`` cells of the floor during the run gets an
image body in the boundary system: its mesh reflected in the floor plane (faces reversed, so
normals point out), following the reflected motion. The image only classifies cells (``Body.
image``): no image stencil reads another object's cells (``boundary._trilinear``), and the only
cell under the floor that a fluid cell reads is its own mirror, so the image needs no boundary
values of its own: it has no rows in the system and no shaders. A hemisphere resting on the
floor then equals the free-field run of it with its image to 7e-12. Faces closer to the floor
than half a cell meet their image across a gap the grid does not resolve: their ghost cells are
contacts (``constants.CONTACT_WEIGHT``), which push no air.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import trimesh

from .boundary import Body
from .grid import Grid
from .meshes import Geometry
from .motion import Motion, RigidState

#: An object whose lowest point comes closer than this many cells to the floor gets an image
#: (a cell centre under the object lies h/2 above the floor; one cell leaves a margin).
FLOOR_IMAGE_CELLS = 1.0

#: The reflection z → −z (about the floor, after shifting it to z = 0).
_M = np.diag([1.0, 1.0, -1.0])


def needs_image(lowest: float, grid: Grid) -> bool:
    """Whether an object whose lowest world z over the run is ``lowest`` (m) reaches close enough
    to ``grid``'s floor to need an image (False without a ground)."""
    return bool(grid.ground) and lowest < grid.interior_bounds()[0, 2] + FLOOR_IMAGE_CELLS * grid.h


def _reflected_point(point: np.ndarray, height: float) -> np.ndarray:
    """The mirror image (3,) of a world point (3,) in the plane z = ``height`` (m)."""
    return _M @ np.asarray(point, dtype=np.float64) + np.array([0.0, 0.0, 2.0 * height])


def reflect_state(state: RigidState, height: float) -> RigidState:
    """The pose and rates of the image in the plane z = ``height`` (m). A reflection R turns a
    rotation Q into R Q R and the angular rates, axial vectors, into −R ω."""
    return RigidState(position=_reflected_point(state.position, height), rotation=_M @ state.rotation @ _M,
                      velocity=_M @ state.velocity, acceleration=_M @ state.acceleration,
                      angular_velocity=-(_M @ state.angular_velocity),
                      angular_acceleration=-(_M @ state.angular_acceleration))


class _ReflectedTrack:
    """A deforming mesh's vertex track in the image's own frame (object-frame z reflected)."""

    def __init__(self, track: Any) -> None:
        self.track = track

    def vertices(self, t: float) -> np.ndarray:
        return self.track.vertices(t) @ _M

    def acceleration(self, t: float) -> np.ndarray:
        return self.track.acceleration(t) @ _M


class ReflectedMotion(Motion):
    """The motion of an object's image in the plane z = ``height`` (m)."""

    def __init__(self, motion: Motion, height: float) -> None:
        self.motion = motion
        self.height = float(height)
        self.moves = motion.moves
        self.deforms = motion.deforms
        if motion.deforms:
            self.track = _ReflectedTrack(motion.track)

    def state(self, t: float) -> RigidState:
        return reflect_state(self.motion.state(t), self.height)

    def prefetch(self, times: np.ndarray) -> None:
        self.motion.prefetch(times)

    def states(self, times: np.ndarray) -> list[RigidState]:
        return [reflect_state(s, self.height) for s in self.motion.states(times)]


def reflected_geometry(geometry: Geometry, height: float) -> Geometry:
    """The image of ``geometry`` in the plane z = ``height`` (m): object-frame vertices reflected in
    their z, faces reversed, rest pose reflected (``reflect_state``); triangle i is triangle i's image."""
    mesh = trimesh.Trimesh(vertices=np.asarray(geometry.vertices) @ _M,
                           faces=np.asarray(geometry.mesh.faces)[:, ::-1], process=False)
    return Geometry(mesh=mesh, position=_reflected_point(geometry.position, height),
                    rotation=_M @ np.asarray(geometry.rotation) @ _M)


def boundary_bodies(objects: list, grid: Grid) -> list[Body]:
    """The bodies of a run's boundary system: one per scene object, in order (the shaders of
    object k act on rows ``GhostCells.rows[k]``), then an image of each object that
    :func:`needs_image` (its ``bounds`` over the run). An object's ``balanced`` and
    ``volume_source`` decide its volume balance (wavesolve/flux_balance.py)."""
    bodies = [Body(o.geometry, o.motion, balanced=o.balanced, volume=o.volume_source) for o in objects]
    height = grid.interior_bounds()[0, 2]
    for o in objects:
        if needs_image(float(o.bounds[0, 2]), grid):
            bodies.append(Body(reflected_geometry(o.geometry, height), ReflectedMotion(o.motion, height), image=True))
    return bodies
