"""The air_quality domain."""
