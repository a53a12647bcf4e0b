"""A small CDC consumer: read a table's change topic from the beginning and print the table it
describes, one JSON row a line, ordered by key.

Changes are Debezium-style envelopes (``before``, ``after``, ``op``, ``source.seq``) keyed by
the row's primary key; a tombstone (the key, no value) follows each delete. With
``--by-seq`` a change whose ``seq`` is not above the last one applied for its key is left
out, as a consumer that guards against replays and reordering does (``cdc_replay``,
``cdc_reorder``, ``cdc_late_delete`` faults), and tombstones are left to compaction; without
it, changes and tombstones apply in the order read.

    python examples/cdc_replay.py --bootstrap 127.0.0.1:9092 --topic customers > table.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def replay(bootstrap: str, topic: str, by_seq: bool) -> tuple[dict[bytes, Any], int]:
    """The table the topic's changes describe (by message key), and the changes read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        await consumer.topics()  # (fetches the cluster's metadata)
        found = consumer.partitions_for_topic(topic) or ()
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        if not partitions:
            raise SystemExit(f"cdc_replay: no topic {topic!r} at {bootstrap}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # read up to where the topic is now
        state: dict[bytes, Any] = {}
        seq: dict[bytes, int] = {}
        read = 0
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for m in messages:
                    if m.value is None:  # a tombstone: the row is gone (by seq, its delete
                        if not by_seq:  # said so already, and a late one must not win)
                            state.pop(m.key, None)
                        continue
                    read += 1
                    change = orjson.loads(m.value)
                    n = change["source"]["seq"]
                    if by_seq and n <= seq.get(m.key, 0):
                        continue
                    seq[m.key] = max(n, seq.get(m.key, 0))
                    if change["op"] == "d":
                        state.pop(m.key, None)
                    else:
                        state[m.key] = change["after"]
        return state, read
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="default %(default)s")
    parser.add_argument("--topic", required=True, help="the table's change topic")
    parser.add_argument(
        "--by-seq", action="store_true", help="apply only changes newer than their key's last"
    )
    args = parser.parse_args(argv)
    state, read = asyncio.run(replay(args.bootstrap, args.topic, args.by_seq))
    out = sys.stdout.buffer
    for key in sorted(state):
        out.write(orjson.dumps(state[key], option=orjson.OPT_APPEND_NEWLINE))
    print(f"cdc_replay: {read:,} changes, {len(state):,} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
