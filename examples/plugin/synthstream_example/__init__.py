"""An example synthstream plugin: ``ticks`` (a stream kind) and ``sqlite`` (a sink kind)."""
