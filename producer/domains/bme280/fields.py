"""The bme280 stream kind's settings fields (the kind itself, with its build, is in
``settings.py``; the model takes these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, model_validator

from producer.plugins import SensorStreamSettings

if TYPE_CHECKING:
    pass


CLIMATES: dict[str, dict[str, float]] = {
    # The seed's defaults: a heated room.
    "indoor": {
        "temp_min": 18.0, "temp_max": 28.0, "humidity_min": 30.0, "humidity_max": 70.0,
        "pressure_min": 1000.0, "pressure_max": 1025.0,
    },
    # Outdoor climates (the seed's "configuration profiles (winter/summer patterns)").
    "winter": {
        "temp_min": -15.0, "temp_max": 8.0, "humidity_min": 55.0, "humidity_max": 95.0,
        "pressure_min": 985.0, "pressure_max": 1040.0,
    },
    "summer": {
        "temp_min": 14.0, "temp_max": 36.0, "humidity_min": 25.0, "humidity_max": 75.0,
        "pressure_min": 1000.0, "pressure_max": 1025.0,
    },
}  # fmt: skip


class Bme280Fields(SensorStreamSettings):
    """The BME280 stream: a temperature/humidity/pressure sensor per device."""

    devices: int = Field(10, ge=1, le=10_000_000, description="Number of devices.")
    climate: Literal["indoor", "winter", "summer"] = Field(
        "indoor", description="Preset ranges; explicit *_min/*_max settings override it."
    )
    temp_min: float | None = Field(None, ge=-40, le=85, description="Default from climate.")
    temp_max: float | None = Field(None, ge=-40, le=85, description="Default from climate.")
    temp_drift: float = Field(0.5, ge=0, description="Max random change per reading (C).")
    humidity_min: float | None = Field(None, ge=0, le=100, description="Default from climate.")
    humidity_max: float | None = Field(None, ge=0, le=100, description="Default from climate.")
    humidity_drift: float = Field(2.0, ge=0, description="Max random change per reading (%).")
    pressure_min: float | None = Field(None, ge=300, le=1100, description="Default from climate.")
    pressure_max: float | None = Field(None, ge=300, le=1100, description="Default from climate.")
    pressure_drift: float = Field(0.5, ge=0, description="Max random change per reading (hPa).")
    add_noise: bool = Field(True, description="Add Gaussian sensor noise to each reading.")
    noise_factor: float = Field(0.1, ge=0, description="Noise standard deviation scale.")
    enable_daily_pattern: bool = Field(True, description="Warm afternoons, humid nights.")
    enable_weather_events: bool = Field(True, description="Storms, fronts and clear spells.")
    weather_event_probability: float = Field(
        0.01, ge=0, le=1, description="Chance per reading that a weather event starts."
    )
    utc_offset_hours: float = Field(
        0.0, ge=-14, le=14, description="Devices' local time for the daily pattern."
    )

    @property
    def entities(self) -> int:
        return self.devices

    @model_validator(mode="after")
    def _apply_climate(self) -> Self:
        for name, value in CLIMATES[self.climate].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for var in ("temp", "humidity", "pressure"):
            low, high = getattr(self, f"{var}_min"), getattr(self, f"{var}_max")
            if low >= high:
                raise ValueError(f"{var}_min ({low}) must be below {var}_max ({high})")
        return self

    def bounds(self, var: str) -> tuple[float, float]:
        low, high = getattr(self, f"{var}_min"), getattr(self, f"{var}_max")
        assert low is not None  # set by _apply_climate
        assert high is not None
        return float(low), float(high)
