"""The bme280 domain."""
