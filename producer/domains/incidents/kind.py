"""The incidents stream kind: its settings model (the fields, from ``fields.py``) and how it
builds (the model is imported when the stream is built, not when the kinds are listed)."""

from __future__ import annotations

from typing import ClassVar

from producer.domains.incidents.fields import IncidentsFields
from producer.episodes import EpisodeKind
from producer.generators import Source
from producer.plugins import Command, StreamContext


class IncidentsSettings(IncidentsFields):
    """Fire/EMS incidents of one city (seed 001): live lifecycle events, and the relational
    data sets of ``synthstream incidents``."""

    KIND: ClassVar[str] = "incidents"
    DESCRIPTION: ClassVar[str] = "fire/EMS incidents of a real city: lifecycle events"
    PACED: ClassVar[bool] = True  # its arrival model takes the pace

    @classmethod
    def commands(cls) -> list[Command]:
        from producer.domains.incidents.commands import INCIDENTS

        return [INCIDENTS]

    def episode_kinds(self) -> dict[str, EpisodeKind]:
        from producer.domains.incidents.episodes import MAJOR_INCIDENT

        return {MAJOR_INCIDENT.name: MAJOR_INCIDENT}

    def build(self, context: StreamContext) -> Source:
        from producer.domains.incidents.stream import IncidentsSource  # the model loads when used

        source = IncidentsSource(self, context.seed, context.shard, context.window)
        source.episodes = context.episodes
        source.arrivals.pace = context.pace
        if not self.cdc:
            return source
        from producer.cdc import ChangeSource, Table
        from producer.domains.incidents.stream import ROW_COLUMNS, UNIT_COLUMNS, UNITS

        source.tables()
        return ChangeSource(source, {
            "incidents": Table("incidents", ("incident_number",), ROW_COLUMNS,
                               stamp="timestamp"),
            UNITS: Table(UNITS, ("incident_number", "station_code"), UNIT_COLUMNS,
                         stamp="timestamp"),
        })  # fmt: skip
