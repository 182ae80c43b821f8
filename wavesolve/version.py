"""The installed package's version (``wavesolve --version``, result files' metadata)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wavesolve")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
