"""What one live wake costs in CPU, and why: the same tick back to back and after a sleep.

Air quality at 33/s to the file sink, in one process: the engine's own steps (a tick
prepared and handed over, the route's send) run 300 times back to back, then 300 times with
a 29 ms sleep before each, as a live run does at that rate. Printed next to the cost of the
bare sleep and of a small fixed Python loop under the same two conditions: the loop barely
slows after a sleep, the tick does, so the cost of a wake is its code being cold (evicted
while the process slept), and less code per wake is what makes a wake cheaper.

    python -m bench.wake
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
import time

import uvloop

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings

START = 1_780_000_000_000  # event time the ticks run at (no clock is read)
STEP_MS = 30  # a record every 30 ms at 33/s
WAKES = 300
SLEEP_S = 0.029


def spin(n: int = 3_000) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


async def measure() -> dict[str, tuple[float, float]]:
    """(back to back, after a sleep) in microseconds of CPU, per step."""
    engine = Engine(load_settings())
    for sink in engine.sinks.values():
        await sink.open()
    stopper = Stopper()
    for route in engine.routes:
        route.stop = stopper.requested
    lanes = [asyncio.create_task(route.run()) for route in engine.routes]
    cursor = START

    async def tick() -> None:
        nonlocal cursor
        await engine._tick(cursor, cursor + STEP_MS)
        cursor += STEP_MS
        await asyncio.sleep(0)  # the lane sends
        await asyncio.sleep(0)

    async def per_wake(step: str, sleep_s: float) -> float:
        costs = []
        for _ in range(WAKES):
            if sleep_s:
                await asyncio.sleep(sleep_s)
            began = time.process_time()
            if step == "tick":
                await tick()
            elif step == "loop":
                spin()
            costs.append(time.process_time() - began)
        return statistics.median(costs) * 1e6

    for _ in range(100):
        await tick()  # warm up: the look-ahead filled, files open
    gc.collect()
    gc.freeze()
    out = {}
    for step in ("tick", "loop"):
        out[step] = (await per_wake(step, 0), await per_wake(step, SLEEP_S))
    began = time.process_time()
    for _ in range(WAKES):
        await asyncio.sleep(SLEEP_S)
    out["bare sleep"] = (0.0, (time.process_time() - began) / WAKES * 1e6)
    for route in engine.routes:
        await route.close()
    await asyncio.gather(*lanes)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name in [k for k in os.environ if k.startswith("SYNTHSTREAM_")]:
            del os.environ[name]
        os.environ.update({
            "SYNTHSTREAM_STREAMS": "air_quality",
            "SYNTHSTREAM_AIR_QUALITY__RATE__TOTAL_PER_S": "33",
            "SYNTHSTREAM_AIR_QUALITY__SINKS": "file",
            "SYNTHSTREAM_SINKS__FILE__DIR": folder,
            "SYNTHSTREAM_LOG__FORMAT": "json",
        })  # fmt: skip
        figures = uvloop.run(measure())
    print(f"CPU per wake, median of {WAKES} (us): back to back, "
          f"after a {SLEEP_S * 1000:g} ms sleep")  # fmt: skip
    for step, (hot, cold) in figures.items():
        ratio = f"{cold / hot:.1f}x" if hot else ""
        print(f"  {step:<44} {hot:>7.0f} {cold:>7.0f}  {ratio}")
    print("  (tick: an air-quality tick prepared and handed over, and the file send;")
    print("   loop: a fixed Python loop; bare sleep: the sleep alone)")


if __name__ == "__main__":
    main()
