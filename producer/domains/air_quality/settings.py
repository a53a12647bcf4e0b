"""The air-quality stream kind: its settings and how it builds."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from producer.settings import (
    RateSettings,
    SensorStreamSettings,
)

if TYPE_CHECKING:
    from producer.generators import Generator
    from producer.rng import I64, U64


class AirQualitySettings(SensorStreamSettings):
    """Air-quality measurements of real cities (seed 000): a random city per message."""

    KIND: ClassVar[str] = "air_quality"
    DESCRIPTION: ClassVar[str] = "air quality of real cities: PM2.5, PM10, NO2, O3, AQI"

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        from producer.domains.air_quality.model import AirQualityGenerator

        return AirQualityGenerator(self, entity_ids, keys)

    rate: RateSettings = RateSettings(total_per_s=1.0)
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
    http_path: str = Field(
        "/api/v1/air-quality", description="Path the http sink posts this stream's records to."
    )
    kafka_topic: str = Field(
        "air-quality-measurements", description="Topic of the kafka sink (key: city_id)."
    )
    kinesis_stream: str = Field(
        "air-quality-measurements", description="Kinesis stream (partition key: city_id)."
    )

    @property
    def entities(self) -> int:
        return self.cities
