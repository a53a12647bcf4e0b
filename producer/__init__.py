"""synthstream: realistic synthetic streaming data for people who build data pipelines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("synthstream")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+local"
