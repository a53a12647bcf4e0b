"""Declarative streams: a user's own entities and events described in a spec file."""
