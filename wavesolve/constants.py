"""Physical defaults and numerical tolerances: the single home of every constant.

Units are SI throughout (m, s, kg, Pa, m/s²).
"""
from __future__ import annotations

import math

#: Speed of sound in air at 20 °C (m/s).
SOUND_SPEED = 343.0
#: Density of air at 20 °C (kg/m³).
AIR_DENSITY = 1.2

#: Stability limit of the 7-point leapfrog scheme, cΔt/h ≤ 1/√3.
MAX_COURANT = 1.0 / math.sqrt(3.0)
#: Default Courant number: a margin below the limit, also safe with ghost cells.
DEFAULT_COURANT = 0.5

#: Cells per wavelength below which the 7-point scheme's dispersion becomes audible: results are
#: accurate up to about c / (10 h) (about 1 % phase-velocity error along an axis, PHYSICS.md).
CELLS_PER_WAVELENGTH = 10.0

#: Default absorbing-layer thickness in cells (measured reflection in tests/test_absorbing_layer.py).
DEFAULT_LAYER_CELLS = 8
#: PML profile σ(d) = σ_max (d/L)^m with σ_max = (m+1) c ln(1/R₀) / (2Lh): exponent m and design
#: reflection R₀ for layers of PML_THICK_CELLS cells or more. Measured (normal and oblique incidence,
#: bench/RESULTS.md "Absorbing-layer profile"): 8 cells with (4, 1e-6) reflect 3e-6 to 5e-6, against
#: 7e-5 to 1e-4 for the (2, 1e-4) profile over 10 cells used until the ninth session.
PML_ORDER = 4
PML_R0 = 1e-6
PML_THICK_CELLS = 6
#: (m, R₀) for thinner layers, where the steep profile reflects more (4 cells: 2.6e-3 here, 1.4e-2 steep).
PML_THIN_ORDER = 2
PML_THIN_R0 = 1e-4

#: Most snapshot times of one pressure slice (``[[slices]] times``): one figure shows them all.
MAX_SLICE_TIMES = 16

#: Cells of clearance required between an object (or listener) and the absorbing layer.
MIN_CLEARANCE_CELLS = 2

#: Smallest distance (in cells) of an image point from its ghost cell: keeps the ghost-cell
#: system well conditioned when a cell centre lies almost on the surface.
MIN_IMAGE_OFFSET_CELLS = 0.5

#: A ghost cell whose image point has more than this share of its trilinear weight in another
#: object's cells faces that object across a gap the grid does not resolve (the contact of two
#: objects, or of an object and its mirror image in a ground: wavesolve/floor_image.py). Such a
#: row is a *contact*: no air lies between, so its surface's motion pushes none (no ρaₙ term) and
#: its value is the mean of its usable face-neighbours. Renormalising what was left of the stencil
#: instead could put the weight on the cell itself: a steel bar lying 0.5 mm above the floor
#: (h = 5 mm) had rows 1.045·p_u = … and radiated 100 times louder.
CONTACT_WEIGHT = 0.5
#: A near image point puts at most 1/2 of its trilinear weight on its own cell when its surface
#: point faces the cell (it lies at least MIN_IMAGE_OFFSET_CELLS = 1/2 cell away along the normal;
#: 0.59 measured in the test suite, travelling boxes, where it falls short of that). A
#: stencil weighing its own cell more than this comes from a surface point that does not face the
#: cell (a seam between touching objects with a sheet of air cells in it): x = w·x + … with w near 1
#: is singular (w = 1 exactly for two 2 cm boxes touching across a cell-centre plane, h = 6 mm) and
#: the row falls back to its face-neighbours' mean, like a contact.
MAX_NEAR_OWN_WEIGHT = 0.75

#: Pressure magnitude (Pa) beyond which a run is declared unstable (1 atm ≈ 1e5 Pa: linear
#: acoustics is meaningless long before this).
INSTABILITY_PRESSURE = 1e8
#: Steps between instability checks.
INSTABILITY_CHECK_INTERVAL = 32
#: Steps whose motion states a simulation asks for at once (Motion.prefetch: one vectorised
#: spline call for a keyframed object instead of one per step, about 300 µs each).
MOTION_BLOCK = 128

#: Peak level of a normalised WAV, dBFS.
WAV_PEAK_DBFS = -1.0

#: Time-parallel chunks: a chunk runs past its window until the field energy (wavesolve.energy)
#: falls below this fraction of its peak …
CHUNK_ENERGY_THRESHOLD = 1e-6
#: … or for at most this many crossings of the box diagonal at the speed of sound.
CHUNK_TAIL_CAP_CROSSINGS = 12
#: Steps between energy checks of a chunk.
CHUNK_ENERGY_CHECK_INTERVAL = 32
#: Attempts of a chunk whose worker died, after the first.
CHUNK_RETRIES = 2

#: Far field: samples on each ray, and their margins (cells) from the source's enclosing sphere
#: and from the box face.
FAR_FIELD_RAY_POINTS = 4
FAR_FIELD_INNER_CELLS = 2
FAR_FIELD_OUTER_CELLS = 3

#: Travelling sources: default air (cells) between an object's enclosing sphere and the absorbing
#: layer of the box that follows it (room for the far-field ray, see wavesolve.travelling).
FOLLOW_MARGIN_CELLS = 12

# -- Water and the gas in bubbles (bubbles shader, wavesolve/bubbles.py), at 20 °C ------------------
#: Density of water (kg/m³), 20 °C (IAPWS-95 formulation; handbook value 998.2).
WATER_DENSITY = 998.2
#: Speed of sound in fresh water (m/s), 20 °C (handbook value, e.g. Del Grosso & Mader 1972: 1482.3).
WATER_SOUND_SPEED = 1482.3
#: Surface tension of water against air (N/m), 20 °C (IAPWS 2014 release: 72.74 mN/m).
WATER_SURFACE_TENSION = 0.07274
#: Dynamic viscosity of water (Pa·s), 20 °C (IAPWS 2008 release: 1.0016 mPa·s).
WATER_VISCOSITY = 1.0016e-3
#: Ambient (atmospheric) pressure at the water surface (Pa), the standard atmosphere.
AMBIENT_PRESSURE = 101325.0
#: Ratio of specific heats of the air in a bubble (diatomic ideal gas).
AIR_HEAT_RATIO = 1.4
#: Thermal diffusivity of air (m²/s), 20 °C: k/(ρ c_p) = 0.0257/(1.204 × 1005) (handbook values).
AIR_THERMAL_DIFFUSIVITY = 2.12e-5

#: Physics engine (wavesolve.physics): default engine time step (s) — 2 kHz resolves a contact
#: in one or two steps (bench/RESULTS.md, "Physics engine")
PHYSICS_TIME_STEP = 5e-4
#: default rate of the exported motion frames (Hz): every engine step
PHYSICS_EXPORT_RATE = 2000.0
#: contact events slower than this normal approach speed (m/s) are dropped ("a few cm/s", PHYSICS.md)
MIN_IMPACT_SPEED = 0.03
#: a contact point within this distance (m) of one of the same body pair in the previous step
#: continues it; farther away it is a new touch (a new impact candidate)
CONTACT_MATCH_DISTANCE = 0.002
#: an impact collects its contact's impulses for at most this long (s) after it starts
IMPACT_WINDOW = 0.005
#: touches shorter than this (s) are dropped: the engine's passing contacts and settling
TOUCH_MIN_DURATION = 0.005
#: time window (s) of the Savitzky–Golay filter that turns contact points into speeds
TOUCH_SMOOTHING = 0.02
#: a touch reported again after at most this long (s) without points continues (rule 2 of
#: wavesolve.physics.touches): PyBullet leaves a sliding box's corner out of its contact manifold for
#: up to about 6 ms (measured at 1 m/s)
TOUCH_MAX_GAP = 0.01
#: air (cells) kept between a generated scene's acoustic ground and the lowest point any object
#: reaches: a body resting on the table rests on the floor, not over a cell of air the grid does not
#: converge in (README, "Ground"). Until the twenty-eighth session one cell: with 0.05 bowl_drop and
#: dice went unstable or singular, through ghost rows weighing themselves about 1 over the floor
#: image (boundary._trilinear, _SurfaceData; tests/test_ground.py)
PHYSICS_GROUND_GAP_CELLS = 0.05

#: A sounding object with a shader that neither is rigid nor knows its net volume acceleration,
#: whose largest extent spans fewer cells than this, is warned about at load: the ghost-cell
#: boundary's flux is not conservative, and on a small body its error is a net volume the body
#: does not displace, a monopole that outgrows the body's own dipole below about 1 kHz. Other
#: sounding objects are balanced instead (README, "Volume balance of sounding objects"); before
#: that the dice showcase's 2 cm dice at 3.3 cells came out 1.5× too loud below 3 kHz
#: (bench/RESULTS.md, thirtieth session).
SMALL_OBJECT_CELLS = 5
