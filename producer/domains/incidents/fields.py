"""The incidents stream kind's settings fields (the kind itself, with its build, is in
``settings.py``; the model takes these)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Self

from pydantic import Field, model_validator

from producer.geography import city_names
from producer.plugins import StreamSettings

if TYPE_CHECKING:
    pass


class IncidentsFields(StreamSettings):
    """Fire/EMS incidents of one city (seed 001): live lifecycle events, and the relational
    data sets of ``synthstream incidents``."""

    city: str = Field(
        "San Diego", description="A city of producer/data/cities.csv: the stations' region."
    )
    stations: int = Field(25, ge=1, le=500, description="Fire stations (seed: --station-count).")
    incidents_per_hour: float = Field(
        10_000 / (90 * 24), gt=0,
        description="Live rate, averaged over a week (default: the seed's 10,000 in 90 days).",
    )  # fmt: skip
    count: int | None = Field(
        None, ge=1, le=100_000_000,
        description="Exactly this many incidents in the backfill window (sets the rate, "
        "as synthstream incidents --incident-count does).",
    )  # fmt: skip
    units_min: int = Field(1, ge=1, le=20, description="Units dispatched per incident, least.")
    units_max: int = Field(3, ge=1, le=20, description="Units dispatched per incident, most.")
    assets_probability: float = Field(0.35, ge=0, le=1, description="Chance of asset records.")
    notes_probability: float = Field(0.55, ge=0, le=1, description="Chance of note records.")
    geohash_precision: int = Field(8, ge=3, le=12, description="Characters of location_geohash.")
    cdc: bool = Field(
        False, description="The lifecycle as changes of an incidents table (Debezium envelope, "
        "key incident_number): created when reported, updated as it moves; and of a table "
        "incident_units (key incident_number, station_code): created when a unit is sent, "
        "updated when it is cleared.",
    )  # fmt: skip

    def channels(self, stream: str) -> tuple[str, ...]:
        return (stream, "incident_units") if self.cdc else (stream,)

    def destination(self, sink: str, channel: str) -> str | None:
        """The units table (CDC) goes next to the incidents: HTTP path
        ``/api/v1/incidents/units``; elsewhere the channel's name (``incident_units``)."""
        if sink == "http":
            return "/api/v1/incidents" + ("/units" if channel == "incident_units" else "")
        return None

    @property
    def entities(self) -> int:
        return self.stations

    @model_validator(mode="after")
    def _units(self) -> Self:
        if self.units_min > self.units_max:
            raise ValueError(f"units_min ({self.units_min}) must not exceed units_max "
                             f"({self.units_max})")  # fmt: skip
        names = city_names()
        if self.city not in names:
            close = difflib.get_close_matches(self.city, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"city {self.city!r} is not in producer/data/cities.csv{hint}")
        return self
