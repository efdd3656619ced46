"""Measure what `rlops serve` adds to a request: routing and logging overhead against the same backend called
directly, and requests per second at concurrency 8.

    .venv/bin/python benchmarks/serve_overhead.py               # 2,000 paired requests, 10 s at concurrency 8
    .venv/bin/python benchmarks/serve_overhead.py --n 500 --seconds 5
    .venv/bin/python benchmarks/serve_overhead.py --transformers   # also the in-process CPU backend, tiny model

The backend is a fast fake OpenAI-compatible server on localhost (tests/fake_openai.py; it answers at once), so the
figures are the proxy's own cost, not a model's. One client with a kept-alive connection sends the same request
alternately straight to the backend and through `rlops serve` (upstream backend; the manifest has a 10 % canary, so
every request is routed by its user's hash; every answer is recorded with fsync on). Overhead = proxy latency minus
direct latency, per pair. Then 8 threads, each with its own connection, send requests through `rlops serve` for
--seconds and the answered requests per second are counted. With --transformers, the same concurrency-8 run against
`rlops serve --backend transformers` on a tiny random Llama (2 layers, hidden 32, the demo's tokenizer; 16 new
tokens, greedy) made by the base stage's code. Prints a Markdown table with the machine and its load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402

from rlops.registry.manifest import Manifest, manifest_path  # noqa: E402
from rlops.serve import server as serve_server  # noqa: E402
from rlops.serve.config import load  # noqa: E402

BODY = {"model": "x", "messages": [{"role": "system", "content": "You are the support assistant of Northwind Shop."},
                                   {"role": "user", "content": "Where is my order NW-88102? It is late."}]}


class Client:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.path = parts.path.rstrip("/") + "/chat/completions"
        self.conn = http.client.HTTPConnection(parts.netloc, timeout=30)

    def ask(self, user: str) -> float:
        data = json.dumps({**BODY, "user": user}).encode()
        start = time.perf_counter()
        self.conn.request("POST", self.path, body=data, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise SystemExit(f"request failed: {response.status}")
        return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def concurrent_rps(url: str, seconds: float, threads: int = 8) -> float:
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        c = Client(url)
        while time.perf_counter() < stop:
            c.ask(f"c{k}-{counts[k]}")
            counts[k] += 1

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def tiny_model_rps(seconds: float) -> float:
    import yaml

    from rlops.train.parent import materialize

    repo = Path(__file__).resolve().parent.parent
    root = Path(tempfile.mkdtemp(prefix="rlops-serve-tiny-"))
    model = yaml.safe_load((repo / "pipelines/conf/model/tiny.yaml").read_text())
    materialize({"model": model, "seed": 0}, repo, root / "artifacts/base/model")
    server = serve_server.start(load(None, {"backend": "transformers",
                                            "generation": {"max_new_tokens": 16, "temperature": 0.0, "seed": 0}}), root)
    try:
        Client(server.url).ask("warm-up")
        return concurrent_rps(server.url, seconds)
    finally:
        serve_server.stop(server)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="paired requests (default 2000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the concurrency-8 run (default 10)")
    ap.add_argument("--transformers", action="store_true", help="also measure the transformers backend (tiny model)")
    args = ap.parse_args()

    fake = FakeOpenAI()
    root = Path(tempfile.mkdtemp(prefix="rlops-serve-bench-"))
    (root / "deployments").mkdir()
    (root / manifest_path("support-agent")).write_text(
        Manifest("support-agent", production="v1", canary="v2", canary_fraction=0.1).text())
    server = serve_server.start(load(None, {"base_url": fake.url}), root)
    direct, proxied = Client(fake.url), Client(server.url)
    for i in range(50):  # warm up both paths
        direct.ask(f"w{i}"), proxied.ask(f"w{i}")
    d, p = [], []
    for i in range(args.n):
        user = f"user-{i}"
        if i % 2:  # alternate which goes first, so neither always meets a warmer cache
            d.append(direct.ask(user))
            p.append(proxied.ask(user))
        else:
            p.append(proxied.ask(user))
            d.append(direct.ask(user))
    server.service.flush()
    over = [(b - a) * 1000 for a, b in zip(d, p)]

    load_before = os.getloadavg()
    rps = concurrent_rps(server.url, args.seconds)
    server.service.flush()
    status = server.service.status()
    serve_server.stop(server)
    fake.close()

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before the concurrency run {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min)")
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| direct to the backend, p50 / p90 (ms) | {pct(d, .5) * 1000:.3f} / {pct(d, .9) * 1000:.3f} |")
    print(f"| through rlops serve, p50 / p90 (ms) | {pct(p, .5) * 1000:.3f} / {pct(p, .9) * 1000:.3f} |")
    print(f"| overhead per request, p50 / p90 of paired differences (ms) | {statistics.median(over):.3f} / "
          f"{pct(over, .9):.3f} |")
    print(f"| requests per second through rlops serve, concurrency 8, {args.seconds:g} s | {rps:.0f} |")
    if args.transformers:
        print(f"| requests per second, transformers backend on the tiny model (16 new tokens), concurrency 8, "
              f"{args.seconds:g} s | {tiny_model_rps(args.seconds):.1f} |")
    print(f"| records written / dropped / failed | {status['records_written']} / {status['records_dropped']} / "
          f"{status['records_failed']} |")


if __name__ == "__main__":
    main()
