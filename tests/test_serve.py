"""`onnxplain serve`: a real uvicorn server in a subprocess on an ephemeral loopback port, with
the demo model; its answers are compared with the library's own results."""
import base64
import contextlib
import http.client
import inspect
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import onnxplain as ox  # noqa: E402
from onnxplain import demo  # noqa: E402
from onnxplain.cli import main  # noqa: E402
from onnxplain.serve import decoded_map, declared_size  # noqa: E402

DATA = demo.demo_model_path().parent
BATCH = 16  # the server's and the library's batch size, so that their model outputs are identical


class Client:
    """Talks to a server on a loopback port over HTTP."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 60) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        connection.request(method, path, data, headers or {})
        response = connection.getresponse()
        status, text = response.status, response.read()
        connection.close()
        return status, json.loads(text)

    def post(self, path: str, body, **kwargs) -> tuple[int, dict]:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)

    def wait_until(self, condition, timeout: float = 10) -> dict:
        """/stats once condition(stats) holds (polled)."""
        end = time.monotonic() + timeout
        while True:
            stats = self.get("/stats")[1]
            if condition(stats) or time.monotonic() > end:
                return stats
            time.sleep(0.05)


class Server(Client):
    """`onnxplain serve` on the demo model in a subprocess."""

    def __init__(self, *flags: str) -> None:
        command = [sys.executable, "-m", "onnxplain.cli", "serve", str(demo.demo_model_path()), "--preset", "unit",
                   "--port", "0", "--batch-size", str(BATCH), *flags]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "http://" not in line:
            self.process.kill()
            raise RuntimeError(f"the server did not start: {line}{self.process.stderr.read()}")
        super().__init__(int(line.split("http://")[1].split()[0].rsplit(":", 1)[1]))

    def stop(self) -> str:
        self.process.terminate()
        _, errors = self.process.communicate(timeout=20)
        return errors


@pytest.fixture(scope="module")
def server():
    running = Server("--workers", "2", "--max-queue", "16", "--max-request-mb", "1",
                     "--methods", "occlusion,rise,ig,pmi,multi,random")
    yield running
    errors = running.stop()
    assert "Traceback" not in errors, errors


@pytest.fixture(scope="module")
def model():
    return ox.Model(demo.demo_model_path(), preset="unit", batch_size=BATCH, progress=False)


def png_b64(name: str) -> str:
    return base64.b64encode((DATA / name).read_bytes()).decode()


def explain_body(image, **parameters) -> dict:
    return {"instances": [image], "parameters": parameters}


def test_health_readiness_and_metadata(server, model):
    assert server.get("/v1/models/demo") == (200, {"name": "demo", "ready": True})
    assert server.get("/v2/health/live") == (200, {"live": True})
    assert server.get("/v2/health/ready") == (200, {"ready": True})
    assert server.get("/v2/models/demo/ready") == (200, {"name": "demo", "ready": True})
    status, metadata = server.get("/v2/models/demo")
    assert status == 200 and metadata["name"] == "demo"
    assert metadata["inputs"][0]["shape"] == [-1, 64, 64, 3] and metadata["outputs"][0]["shape"] == [-1, 3]
    status, error = server.get("/v1/models/other")
    assert status == 404 and "'demo'" in error["error"]


def test_no_nagle_delay_on_keep_alive_connections(server):
    """Small answers on a kept-alive connection are not held back ~40 ms by Nagle's algorithm
    waiting on the client's delayed acknowledgement."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        connection.request("GET", "/v2/health/ready")
        connection.getresponse().read()
        times.append(time.perf_counter() - start)
    connection.close()
    assert sorted(times)[4] < 0.03


def test_predict_round_trips_equal_the_library(server, model):
    images = [ox.load_image(DATA / f, model.input_size) for f in ("demo_red_square.png", "demo_blue_ring.png")]
    want = model.predict(np.stack(images))
    before = server.get("/stats")[1]
    status, answer = server.post("/v1/models/demo:predict",
                                 {"instances": [png_b64("demo_red_square.png"), images[1].tolist()]})
    assert status == 200
    np.testing.assert_array_equal(np.float32(answer["predictions"]), want)
    assert np.argmax(want, axis=1).tolist() == [0, 2]
    tensor = {"name": "images", "shape": [2, 64, 64, 3], "datatype": "FP32", "data": np.stack(images).ravel().tolist()}
    status, answer = server.post("/v2/models/demo/infer", {"id": "7", "inputs": [tensor]})
    assert status == 200 and answer["id"] == "7" and answer["outputs"][0]["shape"] == [2, 3]
    np.testing.assert_array_equal(np.float32(answer["outputs"][0]["data"]).reshape(2, 3), want)
    pixels = ox.load_image(DATA / "demo_green_cross.png").astype(np.uint8)  # 64 x 64 already: whole numbers
    tensor = {"name": "images", "shape": list(pixels.shape), "datatype": "UINT8", "data": pixels.tolist()}
    status, answer = server.post("/v2/models/demo/infer", {"inputs": [tensor]})
    assert status == 200 and answer["outputs"][0]["shape"] == [1, 3]
    np.testing.assert_array_equal(np.float32(answer["outputs"][0]["data"]), model.predict(pixels.astype(np.float32)))
    encoded = {"name": "images", "shape": [1], "datatype": "BYTES", "data": [png_b64("demo_blue_ring.png")]}
    status, answer = server.post("/v2/models/demo/infer", {"inputs": [encoded]})
    assert status == 200
    np.testing.assert_array_equal(np.float32(answer["outputs"][0]["data"]), want[1])
    after = server.get("/stats")[1]  # the model's own counters: 6 images in 4 requests
    assert after["model"]["evaluations"] - before["model"]["evaluations"] == 6
    assert after["requests"]["predict"] - before["requests"]["predict"] == 4
    model_seconds = after["model"]["inference_seconds"] - before["model"]["inference_seconds"]
    assert 0 < model_seconds <= after["work_seconds"] - before["work_seconds"] <= after["busy_seconds"] - before["busy_seconds"] + 1e-3


def test_explain_round_trips_equal_the_library(server, model):
    image = ox.load_image(DATA / "demo_green_cross.png", model.input_size)
    cases = [("rise", {"n_masks": 200, "seed": 3}), ("occlusion", {"window": 8, "stride": 4, "target": [1, 2]}),
             ("multi", {"iterations": 2, "seed": 1})]
    for method, options in cases:
        status, answer = server.post("/v1/models/demo:explain", explain_body(png_b64("demo_green_cross.png"),
                                                                             method=method, **options))
        assert status == 200, answer
        got = answer["explanations"][0]
        want = ox.get_method(method, "input").factory(model).attribute(image, **options)
        assert got["method"] == method and got["targets"] == want.targets and got["complete"] is True
        assert got["evaluations"] == want.evaluations and got["seed"] == want.seed and got["params"] == want.params
        for target in want.targets:
            np.testing.assert_array_equal(decoded_map(got["maps"][str(target)]), want[target])
        for sent, found in zip(got.get("explanations", []), getattr(want, "explanations", [])):
            np.testing.assert_array_equal(decoded_map(sent["mask"], "u1").astype(bool), found.mask)
    assert want.explanations and len(got["explanations"]) == len(want.explanations)


def test_concurrent_explains_equal_sequential_ones(server):
    bodies = [explain_body(png_b64(f"demo_{name}.png"), method=method, seed=i, **options)
              for i, (name, method, options) in enumerate(
                  [("red_square", "rise", {"n_masks": 160}), ("blue_ring", "occlusion", {"window": 8, "stride": 4}),
                   ("green_cross", "rise", {"n_masks": 96}), ("red_square", "occlusion", {"window": 16}),
                   ("blue_ring", "rise", {"n_masks": 128, "target": "top3"}), ("green_cross", "multi", {"iterations": 2})])]
    sequential = [server.post("/v1/models/demo:explain", body) for body in bodies]
    with ThreadPoolExecutor(len(bodies)) as pool:
        concurrent = list(pool.map(lambda body: server.post("/v1/models/demo:explain", body), bodies))
    for (status, got), (_, want) in zip(concurrent, sequential):
        assert status == 200
        got, want = got["explanations"][0], want["explanations"][0]
        assert got["maps"] == want["maps"] and got["evaluations"] == want["evaluations"]  # the bytes, bit for bit


def test_a_deadline_answers_a_partial_valid_map(server):
    start = time.perf_counter()
    status, answer = server.post("/v1/models/demo:explain",
                                 explain_body(png_b64("demo_red_square.png"), method="rise", n_masks=10**7, deadline=0.5))
    assert status == 200 and time.perf_counter() - start < 5
    got = answer["explanations"][0]
    assert got["complete"] is False and 0 < got["convergence"]["masks"] < 10**7
    saliency = decoded_map(got["maps"]["0"])
    assert saliency.shape == (64, 64) and np.all(np.isfinite(saliency)) and saliency.std() > 0
    box = (17, 12, 27, 22)  # the planted square: 2.4 % of the image, 4 x that of the map's mass above its median
    assert demo.evidence_share(saliency, box) > 4 * 100 / 64**2


def png_declaring(height: int, width: int) -> bytes:
    """A PNG whose header declares height x width (its data is one deflated row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_declaring(height: int, width: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    return b"\xff\xd8" + app0 + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_declared_sizes_are_read_from_headers():
    real = (DATA / "demo_red_square.png").read_bytes()
    assert declared_size(real) == (64, 64)
    assert declared_size(png_declaring(100_000, 3)) == (100_000, 3)
    assert declared_size(jpeg_declaring(60_000, 50_000)) == (60_000, 50_000)
    assert declared_size(b"GIF89a") is None and declared_size(b"\xff\xd8\xff") is None


RED = png_b64("demo_red_square.png")
EXPLAIN, PREDICT, INFER = "/v1/models/demo:explain", "/v1/models/demo:predict", "/v2/models/demo/infer"
BAD_REQUESTS = {  # name: (path, body, status, part of the error)
    "not json": (EXPLAIN, b"{", 400, "not valid JSON"),
    "not an object": (PREDICT, b"[1, 2]", 400, "JSON object"),
    "no instances": (EXPLAIN, {"parameters": {}}, 400, "no 'instances'"),
    "instances not a list": (PREDICT, {"instances": "x"}, 400, "must be a JSON list"),
    "empty instances": (PREDICT, {"instances": []}, 400, "at least one image"),
    "bad base64": (PREDICT, {"instances": ["not base64!"]}, 400, "not valid base64"),
    "not an image": (PREDICT, {"instances": [b64(b"hello world")]}, 400, "not a PNG or JPEG"),
    "undecodable png": (PREDICT, {"instances": [b64(png_declaring(64, 64))]}, 400, "cannot decode image bytes: truncated or corrupt"),
    "huge png": (PREDICT, {"instances": [b64(png_declaring(100_000, 100_000))]}, 400, "declares a 100000 x 100000"),
    "huge jpeg": (EXPLAIN, {"instances": [b64(jpeg_declaring(65_000, 65_000))]}, 400, "declares a 65000 x 65000"),
    "ragged list": (PREDICT, {"instances": [[[1, 2], [3]]]}, 400, "rectangular"),
    "strings in a list": (PREDICT, {"instances": [[["a", "b"]]]}, 400, "rectangular"),
    "wrong rank": (PREDICT, {"instances": [[1, 2, 3]]}, 400, "H x W or H x W x C"),
    "wrong channels": (PREDICT, {"instances": [np.zeros((8, 8, 5)).tolist()]}, 400, "5 channels"),
    "out of range": (PREDICT, {"instances": [np.full((8, 8, 3), 300).tolist()]}, 400, "0..255"),
    "nan": (PREDICT, b'{"instances": [[[NaN, 1], [1, 1]]]}', 400, "NaN"),
    "infinity": (EXPLAIN, b'{"instances": [[[1]]], "parameters": {"deadline": Infinity}}', 400, "Infinity"),
    "number instance": (PREDICT, {"instances": [3]}, 400, "base64 PNG/JPEG string or a nested"),
    "parameters not an object": (EXPLAIN, {"instances": [RED], "parameters": [1]}, 400, "must be an object"),
    "unknown method": (EXPLAIN, explain_body(RED, method="gradcam"), 400, "unknown method 'gradcam'"),
    "unknown option": (EXPLAIN, explain_body(RED, method="rise", n_mask=5), 400, "unknown option 'n_mask'"),
    "server files": (EXPLAIN, explain_body(RED, method="ig", references="/etc"), 400, "'references' reads files"),
    "bad option": (EXPLAIN, explain_body(RED, method="occlusion", window=-3), 400, "window must be a positive"),
    "option of a wrong type": (EXPLAIN, explain_body(RED, method="multi", radius="wide"), 400, "method 'multi'"),
    "bad array option": (EXPLAIN, explain_body(RED, method="rise", features=[[1, 2]]), 400, "features must be"),
    "bad target": (EXPLAIN, explain_body(RED, target=7), 400, "not a class index"),
    "bad seed": (EXPLAIN, explain_body(RED, seed=-1), 400, "seed"),
    "bad deadline": (EXPLAIN, explain_body(RED, deadline="soon"), 400, "deadline"),
    "v2 no inputs": (INFER, {"outputs": []}, 400, "no 'inputs'"),
    "v2 two inputs": (INFER, {"inputs": [{}, {}]}, 400, "one tensor"),
    "v2 bad shape": (INFER, {"inputs": [{"shape": [-1, 2], "datatype": "FP32", "data": [1]}]}, 400, "non-negative"),
    "v2 data does not fit": (INFER, {"inputs": [{"shape": [1, 8, 8, 3], "datatype": "FP32", "data": [1, 2]}]}, 400,
                             "needs 192"),
    "v2 huge declared shape": (INFER, {"inputs": [{"shape": [1, 10**6, 10**6, 3], "datatype": "UINT8", "data": [1]}]},
                               400, "pixels per image"),
    "v2 unknown datatype": (INFER, {"inputs": [{"shape": [1], "datatype": "BF17", "data": [1]}]}, 400, "datatype"),
    "v2 bytes shape": (INFER, {"inputs": [{"shape": [2], "datatype": "BYTES", "data": [RED]}]}, 400, "[N]"),
    "unknown model": ("/v1/models/other:predict", {"instances": [RED]}, 404, "unknown model 'other'"),
    "too large": (PREDICT, {"instances": [RED * 600]}, 413, "larger than 1048576 bytes"),
    "too many images": (PREDICT, {"instances": [[[0]]] * 65}, 413, "65 images, above the limit of 64 per request "
                                                                   "(--max-images)"),
    "v2 too many images": (INFER, {"inputs": [{"shape": [5000, 1, 1, 1], "datatype": "UINT8", "data": [0] * 5000}]},
                           413, "5000 images, above the limit of 64"),
    "v2 no image": (INFER, {"inputs": [{"shape": [0, 64, 64, 3], "datatype": "FP32", "data": []}]}, 400, "N >= 1"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_json_error(server, name):
    path, body, status, message = BAD_REQUESTS[name]
    got, answer = server.post(path, body)
    assert got == status and message in answer["error"], answer
    assert "Traceback" not in answer["error"]


def test_the_server_survives_bad_requests_and_counts_them(server):
    for status, _ in [server.get("/nowhere"), server.request("GET", PREDICT)]:
        assert status in (404, 405)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", PREDICT)  # no Content-Length: chunked, larger than the limit
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(20):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the whole body is sent
    response = connection.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    connection.close()
    stats = server.wait_until(lambda s: s["admitted"] == 0)
    assert stats["admitted"] == 0 and stats["requests"]["invalid"] > 0 and stats["requests"]["failed"] == 0
    assert server.get("/v1/models/demo") == (200, {"name": "demo", "ready": True})


def test_a_deadline_is_shared_by_the_images_of_a_request(server):
    start = time.perf_counter()
    status, answer = server.post(EXPLAIN, {"instances": [RED] * 6,
                                           "parameters": {"method": "rise", "n_masks": 10**7, "deadline": 1.5}})
    assert status == 200 and time.perf_counter() - start < 6
    assert [e["complete"] for e in answer["explanations"]] == [False] * 6
    status, answer = server.post(EXPLAIN, {"instances": [RED] * 64, "parameters": {"method": "rise", "deadline": 0.01}})
    assert status == 504 and "the deadline (0.01 s) passed after" in answer["error"] and "of 64 images" in answer["error"]
    status, answer = server.post(EXPLAIN, explain_body(RED, method="occlusion", deadline=10**400))
    assert status == 200 and answer["explanations"][0]["complete"] is True  # bounded by the server's deadline


def test_a_deadline_for_a_method_that_cannot_stop_is_refused(server, model):
    assert "deadline" not in inspect.signature(ox.RandomMap.attribute).parameters
    status, answer = server.post(EXPLAIN, explain_body(RED, method="random", seed=5, deadline=5))
    assert status == 400 and "method 'random' takes no deadline" in answer["error"]
    status, answer = server.post(EXPLAIN, explain_body(RED, method="random", seed=5))
    assert status == 200 and answer["explanations"][0]["complete"] is True
    want = ox.RandomMap(model).attribute(ox.load_image(DATA / "demo_red_square.png", model.input_size), seed=5)
    np.testing.assert_array_equal(decoded_map(answer["explanations"][0]["maps"]["0"]), want[0])


def test_queue_limit_and_cancellation_when_the_client_leaves():
    small = Server("--workers", "1", "--max-queue", "1", "--deadline", "30")
    try:
        slow = explain_body(RED, method="rise", n_masks=10**7)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(small.post, EXPLAIN, {**slow, "parameters": {**slow["parameters"], "deadline": 1.5}})
            assert small.wait_until(lambda s: s["admitted"] == 1)["admitted"] == 1
            for path, body in [(PREDICT, {"instances": [RED]}), (EXPLAIN, explain_body(RED))]:
                status, answer = small.post(path, body)
                assert status == 429 and "--max-queue" in answer["error"]
            status, answer = running.result()
            assert status == 200 and answer["explanations"][0]["complete"] is False
        assert small.post(PREDICT, {"instances": [RED]})[0] == 200  # a place again
        # a client that leaves: its explanation (30 s allowed) stops within moments
        with socket.create_connection(("127.0.0.1", small.port)) as client:
            body = json.dumps(slow).encode()
            client.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                           % (EXPLAIN.encode(), len(body), body))
            assert small.wait_until(lambda s: s["admitted"] == 1)["admitted"] == 1
        start = time.monotonic()
        stats = small.wait_until(lambda s: s["admitted"] == 0)
        assert stats["admitted"] == 0 and time.monotonic() - start < 5
        assert stats["requests"]["explain"] == 2 and stats["requests"]["refused_queue"] == 2
    finally:
        assert "Traceback" not in small.stop()


def test_a_name_that_cannot_be_a_url_path_is_refused(model):
    from onnxplain.serve import Service

    with pytest.raises(ox.OnnxplainError, match=r"the model's name 'a/b' goes into URLs.*\(--name\)"):
        Service(model, "a/b", ["occlusion"])


def test_only_image_models_are_served():
    from types import SimpleNamespace

    from onnxplain.serve import Service

    with pytest.raises(ox.OnnxplainError, match="explains image classifiers; this model's input is tabular"):
        Service(SimpleNamespace(modality="tabular"), "table", ["occlusion"])


def test_serve_flags_are_checked_before_loading(tmp_path, capsys):
    model = str(demo.demo_model_path())
    assert main(["serve", model, "--methods", "occlusion,gradcam"]) == 2
    assert "unknown method 'gradcam'" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.onnx"), "--port", "0"]) == 2
    assert "model file not found" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", model, "--port", str(taken.getsockname()[1])]) == 2
        assert "cannot listen on --host 127.0.0.1" in capsys.readouterr().err
    for flag in ("--workers", "--max-queue", "--deadline", "--max-request-mb", "--max-images"):
        assert main(["serve", model, flag, "0"]) == 2
        assert f"argument {flag}: expected a positive" in capsys.readouterr().err
    for flags, message in ((["--port", "70000"], "argument --port: expected a port in 0..65535"),
                           (["--max-request-mb", "1e-9"], "--max-request-mb 1e-09 allows no byte")):
        assert main(["serve", model, *flags]) == 2
        assert message in capsys.readouterr().err


def toy_classifier(batch: np.ndarray) -> np.ndarray:
    """Two classes from the batch's mean; fails on black images."""
    if not batch.any():
        raise RuntimeError("the accelerator fell over")
    return np.stack([batch.mean(axis=(1, 2, 3)), -batch.mean(axis=(1, 2, 3))], axis=1)


@contextlib.contextmanager
def toy_server(max_queue: int = 4):
    """A real uvicorn server in a thread (its module's constants patchable) over `toy_classifier`."""
    import uvicorn

    from onnxplain.serve import Service, create_app

    model = ox.Model(toy_classifier, preset="unit", input_size=(8, 8), batch_size=4, progress=False)
    service = Service(model, "toy", ["occlusion"], workers=1, max_queue=max_queue)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield Client(listener.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        service.close()
        listener.close()


def test_a_model_fault_answers_500_and_the_server_keeps_serving():
    with toy_server() as client:
        status, answer = client.post("/v1/models/toy:predict", {"instances": [np.zeros((8, 8, 3)).tolist()]})
        assert status == 500 and answer == {"error": "internal error: RuntimeError: the accelerator fell over"}
        status, answer = client.post("/v1/models/toy:predict", {"instances": [np.full((8, 8, 3), 9).tolist()]})
        assert status == 200 and len(answer["predictions"][0]) == 2
        stats = client.get("/stats")[1]
        assert stats["requests"]["failed"] == 1 and stats["requests"]["predict"] == 1 and stats["admitted"] == 0


def test_stalled_bodies_hold_no_place_and_time_out(monkeypatch):
    from onnxplain import serve

    monkeypatch.setattr(serve, "BODY_TIMEOUT_S", 1.0)
    with toy_server(max_queue=1) as client:
        stalled = []
        for _ in range(3):  # three clients that promise 1000 bytes and send 6
            connection = socket.create_connection(("127.0.0.1", client.port))
            connection.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"ins")
            stalled.append(connection)
        status, answer = client.post("/v1/models/toy:predict", {"instances": [np.full((8, 8, 3), 9).tolist()]})
        assert status == 200  # the one place was free: the stalled bodies hold none
        for connection in stalled:
            connection.settimeout(10)
            reply = b""
            while b"did not arrive" not in reply and (chunk := connection.recv(4096)):  # headers, body: any packets
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in reply, reply
            connection.close()
        assert client.get("/stats")[1]["admitted"] == 0
