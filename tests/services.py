"""Real servers for the sink tests, started natively on loopback (no Docker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def kafka_broker(port: int | None = None) -> Iterator[str]:
    """A Tansu broker (Kafka protocol, memory storage); yields its bootstrap address once it
    has printed that it is ready."""
    port = port or free_port()
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "kafka-broker"), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("ready in"):
                break
        else:
            raise RuntimeError("the Kafka broker did not start:\n" + "".join(seen))
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
