"""synthstream: realistic synthetic streaming data for people who build data pipelines."""

__version__ = "0.1.0"
