"""Real servers for the sink tests, started natively on loopback (no Docker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def needs(what: str) -> None:
    """A test that starts a server must be marked ``services``: the fast tier (``make
    check``) runs without them, and says so here rather than waiting for one."""
    if os.environ.get("SYNTHSTREAM_TEST_TIER") == "fast":
        raise AssertionError(f"this test starts {what}: mark it @pytest.mark.services")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def ingest(*args: str, port: int = 0) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """The reference endpoint as a user starts it; yields its port once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield json.loads(line)["port"], proc
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


@contextmanager
def kafka_broker(port: int | None = None) -> Iterator[str]:
    """A Tansu broker (Kafka protocol, memory storage); yields its bootstrap address once it
    has printed that it is ready."""
    needs("a Kafka-protocol broker")
    port = port or free_port()
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "kafka-broker"), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    try:
        wait_for_line(proc, "ready in", "the Kafka broker")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


@contextmanager
def localstack(**env: str) -> Iterator[str]:
    """LocalStack (Kinesis) started natively by scripts/localstack; yields its endpoint URL
    once a real ListStreams call answers (its health endpoint answers earlier)."""
    needs("LocalStack")
    import time

    import boto3
    from botocore.config import Config

    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "localstack"), "start", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, **env},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_line(proc, "Ready.", "LocalStack")
        client = boto3.client(
            "kinesis", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test", config=Config(retries={"max_attempts": 0}),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # readiness probe: the Kinesis backend starts after the gateway
            try:
                client.list_streams()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        stop_group(proc, 15)


def wait_for_line(proc: subprocess.Popen[str], marker: str, what: str) -> None:
    """Read a service's output until a line containing ``marker``; fail with its last lines
    if it ends first."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return
    raise RuntimeError(f"{what} did not start:\n" + "".join(seen[-30:]))


def stop_group(proc: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM to a service's process group; SIGKILL if it is still there after ``timeout``."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@contextmanager
def postgres(port: int | None = None) -> Iterator[tuple[str, int]]:
    """A fresh PostgreSQL cluster started by scripts/postgres on loopback (on ``port``, or a
    free one); yields (psql binary, port) once the server says it accepts connections."""
    needs("PostgreSQL")
    import shutil
    import tempfile

    port = free_port() if port is None else port
    folder = tempfile.mkdtemp(prefix="synthstream-pg-")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "postgres"), "start", folder, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_line(proc, "ready to accept connections", "PostgreSQL")
        psql = shutil.which("psql")
        assert psql is not None, "psql comes with scripts/postgres install"
        yield psql, port
    finally:
        stop_group(proc, 30)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def small_filesystem(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A real, tiny filesystem (tmpfs of ``size``) mounted at ``folder``: a disk that fills.
    Needs root, as CI and the developers' machines have."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                   check=True, capture_output=True, text=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
