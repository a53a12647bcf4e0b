"""The reference BME280 ingest endpoint: a small ASGI app to point synthstream's http sink at."""
