"""The air_quality stream kind's settings fields (the kind itself, with its build, is in
``settings.py``; the model takes these)."""

from __future__ import annotations

from pydantic import Field

from producer.plugins import SensorStreamSettings
from producer.settings import FaultSettings, RateSettings


class AirQualityFaultSettings(FaultSettings):
    """Faults injected between the generator and its sinks, each recorded; and air quality's
    own, pollution episodes."""

    pollution_episode_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Chance per city and day of a pollution episode "
        "(x3-10 for hours, neighbouring hours elevated).",
    )


class AirQualityFields(SensorStreamSettings):
    """Air-quality measurements of real cities (seed 000): a random city per message."""

    rate: RateSettings = RateSettings(total_per_s=1.0)
    faults: AirQualityFaultSettings = AirQualityFaultSettings()
    cities: int = Field(
        300,
        ge=1,
        le=300,
        description="Cities in play: the first N profiles (the seed's ten first).",
    )
    rain_probability: float = Field(
        0.12, ge=0, le=1, description="Chance of rain in a reading (more when humid)."
    )
    noise_pct: float = Field(5.0, ge=0, le=50, description="Sensor noise, % (normal).")

    @property
    def entities(self) -> int:
        return self.cities
