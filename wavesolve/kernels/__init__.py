"""Field-update kernels behind the backends of :mod:`wavesolve.backend`.

- :mod:`.reference`: the NumPy reference (interior leapfrog by slicing; the absorbing layer's
  reference step lives in :mod:`wavesolve.absorbing`).
- :mod:`.cpu`: the fused compiled CPU step (Numba, parallel over cells).
- :mod:`.cuda_backend`: the CUDA kernels of ``cuda/fdtd.cu`` (header ``cuda/fdtd.cuh``) driven
  through CuPy, or through a host build of the same source (:mod:`.cuda_host`) for verification.

Nothing here imports Numba or CuPy at import time; each backend imports its library when chosen.
"""
