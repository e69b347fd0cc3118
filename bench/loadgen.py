"""A cheap HTTP/1.1 load generator, run as its own process: `python -m bench.loadgen
SPEC.json` prints one JSON line of counts.

Raw asyncio streams, keep-alive, `connections` concurrent connections each sending its
next request as soon as the previous answer is read. Only answers completed inside the
measured window (after the warm-up) count. The spec: host, port, connections, warmup_s,
duration_s and `requests`, whole HTTP requests as text, taken in turn by the connections.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; returns its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        await reader.readexactly(int(lower[at + 17:end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, b"\r\nconnection: close" not in lower


async def _connection(spec: dict[str, Any], requests: list[bytes], first: int, step: int,
                      window: tuple[float, float], tally: Tally) -> None:
    start, end = window
    index = first
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < end:
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
            sent = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += step
            status, keep = await _read_answer(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            if start <= time.perf_counter() < end:
                tally.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
            continue
        done = time.perf_counter()
        if start <= done < end:
            tally.latencies.append(done - sent)
            tally.statuses[status] += 1
            if status in (200, 201):
                tally.ok += 1
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [r.encode("utf-8") for r in spec["requests"]]
    connections = int(spec["connections"])
    start = time.perf_counter() + float(spec["warmup_s"])
    window = (start, start + float(spec["duration_s"]))
    tally = Tally()
    cpu = time.process_time()
    await asyncio.gather(*(_connection(spec, requests, i, connections, window, tally)
                           for i in range(connections)))
    latencies = sorted(tally.latencies) or [0.0]
    return {"ok": tally.ok, "errors": tally.errors, "seconds": float(spec["duration_s"]),
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)],
            "statuses": {str(k): v for k, v in tally.statuses.items()},
            "cpu_s": time.process_time() - cpu,
            "wall_s": float(spec["warmup_s"]) + float(spec["duration_s"])}


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(load(spec))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
