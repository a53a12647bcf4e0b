"""The air_quality stream kind: its settings model (the fields, from ``fields.py``) and how it
builds (the model is imported when the stream is built, not when the kinds are listed)."""

from __future__ import annotations

from typing import ClassVar

from producer.domains.air_quality.fields import AirQualityFields
from producer.episodes import EpisodeKind
from producer.faults import Stage
from producer.generators import Generator
from producer.plugins import Option
from producer.records import Schema
from producer.rng import I64, U64


class AirQualitySettings(AirQualityFields):
    """Air-quality measurements of real cities (seed 000): a random city per message."""

    KIND: ClassVar[str] = "air_quality"
    DESCRIPTION: ClassVar[str] = "air quality of real cities: PM2.5, PM10, NO2, O3, AQI"
    DESTINATIONS: ClassVar[dict[str, str]] = {
        "http": "/api/v1/air-quality",
        "kafka": "air-quality-measurements",  # (key: city_id)
        "kinesis": "air-quality-measurements",  # (partition key: city_id)
    }

    @classmethod
    def options(cls) -> list[Option]:
        from producer.domains.air_quality.datasets import DATASET

        return [DATASET]

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        from producer.domains.air_quality.model import (
            AirQualityGenerator,  # the model loads when used
        )

        return AirQualityGenerator(self, entity_ids, keys)

    def episode_kinds(self) -> dict[str, EpisodeKind]:
        from producer.domains.air_quality.episodes import POLLUTION

        return {POLLUTION.name: POLLUTION}

    def fault_stages(self, key: int, schema: Schema) -> list[Stage]:
        if self.faults.pollution_episode_rate <= 0:
            return []
        from producer.domains.air_quality.faults import PollutionEpisodes

        return [PollutionEpisodes(self.faults.pollution_episode_rate, key)]
