"""The ``synthstream`` command: stops are caught first (``producer.early``), then the rest
is imported."""

from __future__ import annotations


def main() -> int:
    from producer import early

    early.catch()
    from producer.cli import main as cli

    return cli()
