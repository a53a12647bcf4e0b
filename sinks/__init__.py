"""Sinks deliver; the engine batches, paces and retries (see ``sinks.base.Sink``)."""
