"""Live control, measured: how soon "x3" shows in the records, how exact it is, what the
steered run costs, and whether a backfill given the control log makes the same records.

A live BME280 run (1,000 devices every 1 s, to files) with control on: 10 s at x1, then
``POST rate_multiplier=3`` through the API, 10 s more, SIGTERM. From the files afterwards:
records per event-time second before and after; the first second at >= 2.85x the rate
before, counted from the moment the request was sent (wall time and event time are the same
clock in a live run); the records/s of whole seconds after the change against 3x. CPU per
record from the process's own counters (``process_cpu_seconds_total`` at 4 s, at the
change, at the end). Then a backfill of the run's window with its control log, compared
record for record.

    python -m bench.control
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from bench.live import free_port, scrape

ENV = {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
       "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
       "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"}  # fmt: skip
PHASE_S = 10.0


def post(port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=json.dumps(body).encode())  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def event_ms(line: bytes) -> int:
    stamp = json.loads(line)["timestamp"]
    return round(datetime.fromisoformat(stamp).timestamp() * 1000)


def lines(folder: Path) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((folder / "bme280").glob("*.jsonl")):
        out += path.read_bytes().splitlines()
    return out


def counters(port: int) -> tuple[float, float]:
    """CPU seconds and records generated so far, from one scrape."""
    samples = scrape(port)
    generated = samples.get('synthstream_records_generated_total{stream="bme280"}', 0.0)
    return samples["process_cpu_seconds_total"], generated


def main() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({**ENV, "SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_CONTROL__ENABLED": "true"})
    with tempfile.TemporaryDirectory() as tmp:
        out, log, port = Path(tmp) / "live", Path(tmp) / "control.jsonl", free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", str(out),
             "--metrics-port", str(port), "--control-log", str(log)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        started = json.loads(next(x for x in proc.stderr if '"synthstream_started"' in x))
        time.sleep(4.0)  # start-up left out of the CPU figures
        cpu0, gen0 = counters(port)
        time.sleep(PHASE_S - 4.0)
        cpu1, gen1 = counters(port)
        sent_ms = time.time_ns() // 1_000_000
        action = post(port, "/control/streams/bme280", {"rate_multiplier": 3})
        time.sleep(PHASE_S)
        cpu2, gen2 = counters(port)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        proc.wait(timeout=60)
        finished = next(json.loads(x) for x in rest.splitlines() if '"synthstream_finished"' in x)
        records = lines(out)
        at = int(action["at_ms"])  # type: ignore[call-overload]
        per_second = collections.Counter((event_ms(x) - at) // 1000 for x in records)
        before = sum(per_second[s] for s in range(-5, 0)) / 5
        after_seconds = [s for s in sorted(per_second) if s >= 0][:-1]  # whole seconds
        after = sum(per_second[s] for s in after_seconds) / max(len(after_seconds), 1)
        reached = next((at + s * 1000 for s in after_seconds if per_second[s] >= 2.85 * before),
                       None)  # fmt: skip
        began = time.perf_counter()
        again = subprocess.run(
            [sys.executable, "-m", "producer", "run", "--backfill", "--start", started["origin"],
             "--end", finished["event_time_reached"], "--sinks", "file", "--out",
             str(Path(tmp) / "backfill"), "--metrics-port", "0", "--control-log", str(log)],
            capture_output=True, text=True, env={**env, "SYNTHSTREAM_CONTROL__ENABLED": "false"},
        )  # fmt: skip
        replay_s = time.perf_counter() - began
        same = again.returncode == 0 and lines(Path(tmp) / "backfill") == records
    x1 = (cpu1 - cpu0) / (PHASE_S - 4.0)
    x3 = (cpu2 - cpu1) / PHASE_S
    print("live control: bme280, 1,000 devices every 1 s, to files; x3 through the API")
    print(f"  effect at event time {at - sent_ms:+d} ms from the request (what was made ahead)")
    shown = "never" if reached is None else f"{(reached - sent_ms) / 1000:.1f} s"
    print(f"  records at >= 2.85x the rate before: {shown} after the request (target: 15 s)")
    print(f"  records/s: {before:,.0f} before, {after:,.0f} after = {after / before:.3f}x "
          f"(asked 3x, over {len(after_seconds)} whole seconds)")  # fmt: skip
    print(f"  share of a core: x1 {x1:.1%}, x3 {x3:.1%}; CPU per 1,000 records: "
          f"x1 {(cpu1 - cpu0) / max(gen1 - gen0, 1) * 1e6:.1f} ms, "
          f"x3 {(cpu2 - cpu1) / max(gen2 - gen1, 1) * 1e6:.1f} ms")  # fmt: skip
    print(f"  backfill with the control log: {'the same' if same else 'DIFFERENT'} "
          f"{len(records):,} records, in {replay_s:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
