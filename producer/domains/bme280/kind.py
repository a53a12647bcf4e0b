"""The bme280 stream kind: its settings model (the fields, from ``fields.py``) and how it
builds (the model is imported when the stream is built, not when the kinds are listed)."""

from __future__ import annotations

from typing import ClassVar

from producer.domains.bme280.fields import Bme280Fields
from producer.episodes import EpisodeKind
from producer.generators import Generator
from producer.rng import I64, U64


class Bme280Settings(Bme280Fields):
    """The BME280 stream: a temperature/humidity/pressure sensor per device."""

    KIND: ClassVar[str] = "bme280"
    DESCRIPTION: ClassVar[str] = "BME280 sensors: temperature, humidity, pressure per device"
    # The ingest endpoint's path (the seed's); a topic and a Kinesis stream named bme280.
    DESTINATIONS: ClassVar[dict[str, str]] = {"http": "/api/v1/sensors/bme280"}

    def episode_kinds(self) -> dict[str, EpisodeKind]:
        from producer.domains.bme280.episodes import WEATHER

        return {WEATHER.name: WEATHER}

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        from producer.domains.bme280.model import Bme280Generator  # the model loads when used

        return Bme280Generator(self, entity_ids, keys)
