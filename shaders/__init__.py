"""Built-in acoustic shaders of wavesolve, registered through the ``wavesolve.shaders`` entry points."""
