"""Load test of `onnxplain serve`: the server in a subprocess on loopback, clients in threads.

    python bench/serve.py [--model PATH] [--preset P] [--seconds 15] [--clients 1,2,4,8] [--workers 2]
                          [--quick] [--json OUT]

1. In-process first (no server running): the model's pure session.run throughput at batch sizes
   1..64 (bench/limit.py's measure), then the benchmark's explanations and predictions one after
   another through the library (the baseline the server is compared with).
2. `onnxplain serve MODEL --max-queue 8` in a subprocess; for each mix ("mixed": 1 request in 4
   an explanation, "explain-heavy": 3 in 4) and each number of clients (1, 2, 4, 8), the clients
   send requests back to back for --seconds (keep-alive connections, bodies encoded once):
   throughput and p50/p95/p99 latency per kind, errors (expected 0: --max-queue >= clients), and
   the model's share of the server's time from the model's own counters (GET /stats):
   - time share = change in Model.inference_seconds / change in the server's work seconds (the
     requests' running times in the workers, summed over workers, as the model's seconds are);
   - work share = the time the model alone needs for the evaluations the server made (one-image
     calls at the pure batch-1 rate, the rest at the best pure rate) / the phase's wall time.
   Predictions while explanations run: the predict latencies of the mixes, against a quiet
   predict-only phase.
3. Overload: 32 clients against --max-queue 8: every answer must be 200 or 429.
4. The server's RSS (/proc) after 100 and after 1,000 answered requests counted from the end of a
   warm-up at the highest concurrency (onnxruntime's memory arena grows to the peak of concurrent
   runs once), predictions added at the end if the phases made fewer, and after every phase;
   target: growth within 50 MiB.
Writes a table and JSON (default bench/serve_summary.json). EfficientNet-Lite0 from
../shared/models when present (chelsea from scikit-image, sent as JPEG), else the demo model.
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from limit import pure_throughput  # noqa: E402

DEFAULT_MODEL = BENCH.parents[1] / "shared/models/efficientnet_lite0.onnx"
DEFAULT_JSON = BENCH / "serve_summary.json"
EXPLANATIONS = [("rise", {"n_masks": 48}), ("occlusion", {"window": 56, "stride": 28})]  # alternated
MIXES = {"mixed": 0.25, "explain-heavy": 0.75}  # share of requests that are explanations
MAX_QUEUE, OVERLOAD_CLIENTS = 8, 32


def test_image(demo_model: bool) -> tuple[bytes, str]:
    """(the encoded image every request sends, its description)."""
    import cv2

    from onnxplain import demo

    if demo_model:
        path = demo.demo_model_path().parent / "demo_red_square.png"
        return path.read_bytes(), path.name
    from skimage import data

    _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return jpeg.tobytes(), "skimage chelsea (JPEG q90, 451 x 300)"


def bodies(encoded: bytes) -> dict[str, list[bytes]]:
    """Request bodies, encoded once: one predict, and one explain per EXPLANATIONS entry."""
    image = base64.b64encode(encoded).decode()
    return {"predict": [json.dumps({"instances": [image]}).encode()],
            "explain": [json.dumps({"instances": [image], "parameters": {"method": m, "seed": 0, **o}}).encode()
                        for m, o in EXPLANATIONS]}


def in_process(model, image: np.ndarray, encoded: bytes, count: int) -> dict:
    """Pure throughput, then `count` explanations and predictions one after another in-process."""
    import onnxplain as ox
    from onnxplain.image import decode_image

    for method, options in EXPLANATIONS:
        ox.get_method(method, "input").factory(model).attribute(image, **options)  # tunes the batch size
    rates = pure_throughput(model, image, 32)
    explain_s, predict_s = [], []
    for i in range(count):
        method, options = EXPLANATIONS[i % len(EXPLANATIONS)]
        start = time.perf_counter()
        ox.get_method(method, "input").factory(model).attribute(decode_image(encoded, model.input_size), **options)
        explain_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.predict(decode_image(encoded, model.input_size))
        predict_s.append(time.perf_counter() - start)
    return {"pure_images_per_second": {str(k): round(v, 1) for k, v in rates.items()},
            "batch": model.batch_record(), "explain": summary(explain_s, sum(explain_s)),
            "predict": summary(predict_s, sum(predict_s))}


def summary(latencies: list[float], wall: float) -> dict:
    if not latencies:
        return {"count": 0}
    p = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return {"count": len(latencies), "per_second": round(len(latencies) / wall, 2),
            "p50_ms": round(float(p[0]), 1), "p95_ms": round(float(p[1]), 1), "p99_ms": round(float(p[2]), 1)}


class Server:
    def __init__(self, model: Path, preset: str, workers: int) -> None:
        command = [sys.executable, "-m", "onnxplain.cli", "serve", str(model), "--preset", preset, "--port", "0",
                   "--name", "bench", "--workers", str(workers), "--max-queue", str(MAX_QUEUE)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        self.port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
        self.completed = 0  # requests answered with 200, all phases
        self.rss: dict[str, float] = {}
        self._lock = threading.Lock()

    def connect(self) -> http.client.HTTPConnection:
        """A keep-alive connection without Nagle's delay (http.client sends headers and body apart)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def stats(self) -> dict:
        connection = self.connect()
        connection.request("GET", "/stats")
        stats = json.loads(connection.getresponse().read())
        connection.close()
        return stats

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024

    def count(self) -> None:
        with self._lock:
            self.completed += 1
            if self.completed in (100, 1000):
                self.rss[str(self.completed)] = round(self.rss_mib(), 1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def client(server: Server, requests: dict[str, list[bytes]], p_explain: float, seed: int, until: float,
           results: list) -> None:
    """Sends requests back to back until `until` (perf_counter): (kind, status, seconds) each."""
    rng = random.Random(seed)
    connection = server.connect()
    turn = seed
    while time.perf_counter() < until:
        kind = "explain" if rng.random() < p_explain else "predict"
        body = requests[kind][turn % len(requests[kind])]
        turn += kind == "explain"
        path = f"/v1/models/bench:{kind}"
        start = time.perf_counter()
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0  # the connection failed
            connection.close()
            connection = server.connect()
        results.append((kind, status, time.perf_counter() - start))
        if status == 200:
            server.count()
    connection.close()


def phase(server: Server, requests, clients: int, p_explain: float, seconds: float, pure=None) -> dict:
    """`clients` clients for `seconds`: per-kind summaries, errors, and the model's shares;
    pure(batch size), when given, measures the model's pure images/s at batch 1 and that size
    just after (for the work share)."""
    results: list = []
    before, start = server.stats(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(server, requests, p_explain, i, start + seconds, results))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, after = time.perf_counter() - start, server.stats()
    model = {k: after["model"][k] - before["model"][k] for k in ("evaluations", "inference_seconds")}
    work = after["work_seconds"] - before["work_seconds"]
    load = os.getloadavg()
    rates = pure(after["model"]["batch"]["size"]) if pure else None
    single = sum(1 for _, s, _ in results if s == 200)  # one one-image call each: a predict, an explanation's clean image
    model_needs = single / rates[1] + max(0, model["evaluations"] - single) / max(rates.values()) if rates else None
    statuses: dict[str, int] = {}
    for _, status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"clients": clients, "seconds": round(wall, 2), "statuses": statuses,
            "errors": sum(n for s, n in statuses.items() if s != "200"),
            **{kind: summary([t for k, s, t in results if k == kind and s == 200], wall) for kind in ("predict", "explain")},
            "model_evaluations": model["evaluations"], "model_seconds": round(model["inference_seconds"], 2),
            "work_seconds": round(work, 2), "load_average": [round(v, 2) for v in load],
            "rss_mib_after": round(server.rss_mib(), 1), "requests_after": server.completed,
            "pure_images_per_second": {str(k): round(v, 1) for k, v in rates.items()} if rates else None,
            "model_time_share": round(model["inference_seconds"] / work, 3) if work else None,
            "model_work_share": round(model_needs / wall, 3) if rates else None}


def main() -> None:
    import onnxplain as ox
    from onnxplain import demo
    from onnxplain.image import decode_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL if DEFAULT_MODEL.is_file() else demo.demo_model_path())
    parser.add_argument("--preset", help="default: efficientnet-lite, or unit for the demo model")
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers")
    parser.add_argument("--quick", action="store_true", help="4 s phases, 1 and 4 clients")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    demo_model = args.model.resolve() == demo.demo_model_path().resolve()
    preset = args.preset or ("unit" if demo_model else "efficientnet-lite")
    seconds = 4.0 if args.quick else args.seconds
    levels = [1, 4] if args.quick else [int(c) for c in args.clients.split(",")]
    encoded, image_name = test_image(demo_model)
    requests = bodies(encoded)

    print(f"in-process baseline ({args.model.name}, {image_name}) ...", flush=True)
    model = ox.Model(args.model, preset=preset, progress=False)
    image = decode_image(encoded, model.input_size, model.channels)
    baseline = in_process(model, image, encoded, 2 if args.quick else 6)
    rates = baseline["pure_images_per_second"]

    def pure(size: int) -> dict[int, float]:
        return pure_throughput(model, image, 2 * size, sizes=sorted({1, size}))

    print(f"  pure images/s by batch size {rates}; explain {baseline['explain']}; predict {baseline['predict']}")

    server = Server(args.model, preset, args.workers)
    record = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
              "cpus": os.cpu_count(), "model": args.model.name, "preset": preset, "image": image_name,
              "explanations": [{"method": m, **o} for m, o in EXPLANATIONS], "workers": args.workers,
              "max_queue": MAX_QUEUE, "seconds_per_phase": seconds, "in_process": baseline, "phases": []}
    try:
        phase(server, requests, max(levels), 1.0, seconds / 2)  # warm-up: batch size, every worker explaining at once
        server.completed = 0  # RSS milestones count from here
        quiet = phase(server, requests, 1, 0.0, seconds / 2)
        record["quiet_predict"] = quiet["predict"]
        print(f"server: warm; quiet predict {quiet['predict']}", flush=True)
        header = (f"{'mix':<14}{'clients':>7}{'expl/s':>8}{'expl p50/p95/p99 ms':>26}{'pred/s':>8}"
                  f"{'pred p50/p95/p99 ms':>24}{'errors':>7}{'model time':>11}{'model work':>11}")
        print(header)
        for mix, p_explain in MIXES.items():
            for clients in levels:
                row = {"mix": mix, **phase(server, requests, clients, p_explain, seconds, pure)}
                record["phases"].append(row)
                e, p = row["explain"], row["predict"]
                print(f"{mix:<14}{clients:>7}{e.get('per_second', 0):>8}"
                      f"{'/'.join(str(e.get(k, '-')) for k in ('p50_ms', 'p95_ms', 'p99_ms')):>26}"
                      f"{p.get('per_second', 0):>8}{'/'.join(str(p.get(k, '-')) for k in ('p50_ms', 'p95_ms', 'p99_ms')):>24}"
                      f"{row['errors']:>7}{row['model_time_share']:>11.1%}{row['model_work_share']:>11.1%}", flush=True)
        overload = phase(server, requests, OVERLOAD_CLIENTS, MIXES["explain-heavy"], seconds / 2)
        record["overload"] = {"clients": OVERLOAD_CLIENTS, "statuses": overload["statuses"],
                              "only_200_and_429": set(overload["statuses"]) <= {"200", "429"}}
        print(f"overload, {OVERLOAD_CLIENTS} clients against --max-queue {MAX_QUEUE}: {overload['statuses']}")
        while server.completed < 1000:
            phase(server, requests, 4, 0.0, 2.0)
        record["rss_mib"] = {**server.rss, "end": round(server.rss_mib(), 1), "requests": server.completed}
        record["rss_growth_100_to_1000_mib"] = round(server.rss["1000"] - server.rss["100"], 1)
        print(f"server RSS: {record['rss_mib']} MiB; growth 100 -> 1000 requests "
              f"{record['rss_growth_100_to_1000_mib']} MiB (target <= 50)")
        record["server_stats"] = server.stats()
    finally:
        server.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
