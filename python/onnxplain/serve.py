"""`onnxplain serve`: predictions and explanations over HTTP (needs the extra `onnxplain[serve]`).

One `Model` (one session) is shared by every request; explanations run through the method
registry with `deadline=` and `cancel=`, in a bounded pool of worker threads off the event loop,
so whatever the model does to share work between threads applies here unchanged. Routes
(NAME: the model file's stem unless given):

    KServe V1   GET  /v1/models/NAME             {"name", "ready"}
                POST /v1/models/NAME:predict     {"instances": [IMAGE, ...]} -> {"predictions": [[p_0, ..., p_K-1]]}
                POST /v1/models/NAME:explain     {"instances": [IMAGE], "parameters": {"method", "target", "seed",
                                                  "deadline", ...options}} -> {"explanations": [EXPLANATION]}
    V2 (OIP)    GET  /v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready
                POST /v2/models/NAME/infer       one input tensor: FP32/FP64/UINT8/INT* images [N, H, W, C]
                                                  (or [H, W, C]), or BYTES [N] of base64 PNG/JPEG
    onnxplain   GET  /stats                      the model's counters and the server's

IMAGE: a base64 PNG/JPEG string or a nested H x W x C (or H x W) list of 0..255 values, converted
and resized as `load_image` does. A map is {"shape": [H, W], "data": base64 of its little-endian
float32 bytes}. Every refusal is a JSON {"error": "..."}: 400 malformed or invalid, 404 unknown
model, 408 body not received in time, 413 too large (bytes or images), 429 queue full, 504 the
deadline passed before every image of an explanation request started.
"""

import asyncio
import base64
import binascii
import inspect
import json
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .errors import OnnxplainError
from .image import decode_image, load_image
from .model import Model
from .registry import accepted, get_method

MAX_IMAGE_PIXELS = 4096 * 4096  # the largest image a request may declare (decoded: 200 MB as float32 RGB)
SERVED_OPTIONS = {"references": "reads files on the server"}  # method options a request may not set
TOP_LEVEL = ("method", "target", "seed", "deadline")  # explain parameters that are not method options
DISCONNECT_POLL_S = 0.1  # how often a waiting request checks that its client is still there
BODY_TIMEOUT_S = 30.0  # the longest a request body may take to arrive (408); it holds no queue place meanwhile
V2_DTYPES = ("FP16", "FP32", "FP64", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
log = logging.getLogger("onnxplain.serve")


class Refused(Exception):
    """A request the server answers with `status` and {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Service:
    """The model, its methods and the request limits, independent of HTTP.

    methods: the registered input methods served; workers: explanations run at once (as many
    predictions run at once besides, so they never wait behind explanations); max_queue: requests
    admitted at once (running or waiting), beyond which they are refused (429); deadline: the
    longest an explanation runs, seconds from its arrival (a request may ask less; a request of
    several images shares it among them); max_request_bytes: the largest request body (413);
    max_images: the most images one request may hold (413), checked before any is decoded.
    """

    def __init__(self, model: Model, name: str, methods: list[str], *, workers: int = 2, max_queue: int = 32,
                 deadline: float = 60.0, max_request_bytes: int = 20 * 2**20, max_images: int = 64) -> None:
        if getattr(model, "modality", "image") != "image":
            raise OnnxplainError(f"onnxplain serve explains image classifiers; this model's input is "
                                 f"{model.modality} (serving it is not implemented)")
        for method in methods:
            get_method(method, "input")
        if not re.fullmatch(r"[\w.-]+", name):
            raise OnnxplainError(f"the model's name {name!r} goes into URLs: use letters, digits, '.', '_' or '-' "
                                 "(--name)")
        for option, value in (("workers", workers), ("max_queue", max_queue), ("max_request_bytes", max_request_bytes),
                              ("max_images", max_images)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OnnxplainError(f"{option} must be a positive integer, got {value!r}")
        if not (isinstance(deadline, (int, float)) and deadline > 0 and math.isfinite(deadline)):
            raise OnnxplainError(f"deadline must be a positive number of seconds, got {deadline!r}")
        self.model, self.name, self.methods = model, name, list(methods)
        self.max_queue, self.deadline, self.max_request_bytes = max_queue, float(deadline), max_request_bytes
        self.max_images = max_images
        self.explain_pool = ThreadPoolExecutor(workers, thread_name_prefix="onnxplain-explain")
        self.predict_pool = ThreadPoolExecutor(workers, thread_name_prefix="onnxplain-predict")
        self._lock = threading.Lock()
        self._admitted = 0
        self._counts = {"predict": 0, "explain": 0, "invalid": 0, "failed": 0, "refused_queue": 0, "cancelled": 0}
        self._busy = 0  # jobs running in a worker now
        self._busy_since = 0.0
        self._busy_seconds = 0.0  # wall time during which at least one job was running
        self._work_seconds = 0.0  # the jobs' own durations, summed over the workers
        self.model.predict(np.full(model.input_size + (model.channels,), 127.0, np.float32))  # classes, output kind
        self.ready = True
        unbounded = [m for m in methods if not accepted({"deadline": None}, self._explainer(m).attribute)]
        if unbounded:
            log.warning("methods %s take no deadline=: their explanations run to the end", ", ".join(unbounded))

    def close(self) -> None:
        self.explain_pool.shutdown(wait=True, cancel_futures=True)
        self.predict_pool.shutdown(wait=True, cancel_futures=True)

    def _explainer(self, method: str):
        return get_method(method, "input").factory(self.model)

    # ---- admission -------------------------------------------------------------------------------
    def admit(self) -> None:
        """Takes a place for one request, or refuses it (429) when max_queue are already admitted;
        `start` (or `release`) gives it back."""
        with self._lock:
            if self._admitted >= self.max_queue:
                self._counts["refused_queue"] += 1
                raise Refused(429, f"the server is busy ({self.max_queue} requests admitted, the --max-queue limit); "
                                   "retry later")
            self._admitted += 1

    def release(self, future: Future | None = None) -> None:
        """Gives back an admitted request's place (after its work, or without any)."""
        with self._lock:
            self._admitted -= 1
            if future is not None and future.cancelled():
                self._counts["cancelled"] += 1

    def start(self, kind: str, work: Callable[[], dict]) -> Future:
        """Runs an admitted request's work() in the pool of its kind ("predict" or "explain")."""
        future = (self.explain_pool if kind == "explain" else self.predict_pool).submit(self._timed, kind, work)
        future.add_done_callback(self.release)
        return future

    def _timed(self, kind: str, work: Callable[[], dict]) -> dict:
        start = time.perf_counter()
        with self._lock:
            if self._busy == 0:
                self._busy_since = start
            self._busy += 1
        try:
            answer = work()
        except Exception as exc:
            with self._lock:
                self._counts["invalid" if isinstance(exc, (Refused, OnnxplainError)) else "failed"] += 1
            raise
        finally:
            with self._lock:
                end = time.perf_counter()
                self._work_seconds += end - start
                self._busy -= 1
                if self._busy == 0:
                    self._busy_seconds += end - self._busy_since
        with self._lock:
            self._counts[kind] += 1
        return answer

    def stats(self) -> dict:
        """The model's own counters (images evaluated, seconds inside the model summed over
        threads) and the server's: requests by outcome, requests admitted now, busy_seconds (wall
        time with any request running) and work_seconds (requests' running times summed over
        workers: the time that holds the model's)."""
        with self._lock:
            busy = self._busy_seconds + (time.perf_counter() - self._busy_since if self._busy else 0.0)
            return {"model": {"evaluations": self.model.evaluations,
                              "inference_seconds": round(self.model.inference_seconds, 6),
                              "batch": self.model.batch_record()},
                    "requests": dict(self._counts), "admitted": self._admitted, "busy_seconds": round(busy, 6),
                    "work_seconds": round(self._work_seconds, 6)}

    # ---- work (in the pools) --------------------------------------------------------------------
    def predict(self, payload: Any) -> dict:
        """The V1 predict answer of a parsed request body: class probabilities per image."""
        if not isinstance(payload, dict):
            raise Refused(400, 'the request must be a JSON object {"instances": [IMAGE, ...]}')
        images = self.images(_field(payload, "instances", list))
        return {"predictions": self.model.predict(np.stack(images)).tolist()}

    def explain(self, payload: Any, arrived: float, cancel: threading.Event) -> dict:
        """The V1 explain answer of a parsed request body; `arrived`: its perf_counter time."""
        if not isinstance(payload, dict):
            raise Refused(400, 'the request must be a JSON object {"instances": [IMAGE], "parameters": {...}}')
        images = self.images(_field(payload, "instances", list))
        parameters = payload.get("parameters", {})
        if not isinstance(parameters, dict):
            raise Refused(400, f'"parameters" must be an object, got {type(parameters).__name__}')
        method = parameters.get("method", self.methods[0])
        if method not in self.methods:
            raise Refused(400, f"unknown method {method!r}; this server explains with: {', '.join(self.methods)}")
        explainer = self._explainer(method)
        options = self._options(method, explainer, parameters)
        limit = parameters.get("deadline", self.deadline)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise Refused(400, f'"deadline" must be a positive number of seconds, got {str(limit)[:50]}')
        limit = float(min(limit, self.deadline))  # the server's deadline bounds a request's (and huge integers)
        stop = accepted({"deadline": None, "cancel": cancel}, explainer.attribute)  # those the method takes
        if "deadline" in parameters and "deadline" not in stop:
            raise Refused(400, f"method {method!r} takes no deadline; leave \"deadline\" out")
        explanations = []
        for index, image in enumerate(images):
            if "deadline" in stop:  # the time left, shared among the images left
                left = limit - (time.perf_counter() - arrived)
                if left <= 0:
                    raise Refused(504, f"the deadline ({limit:g} s) passed after {index} of "
                                       f"{len(images)} images; send fewer images per request or allow a longer deadline")
                stop["deadline"] = left / (len(images) - index)
            try:
                result = explainer.attribute(image, **options, **stop)
            except (OnnxplainError, ValueError, TypeError) as exc:  # option values the method refused
                raise Refused(400, f"method {method!r}: {exc}") from None
            explanations.append(explanation_json(result))
        return {"explanations": explanations}

    def images(self, values: list) -> list[np.ndarray]:
        """Checked images (H x W x C float32 at model resolution) from a request's IMAGEs."""
        if not values:
            raise Refused(400, '"instances" is empty: give at least one image')
        self.check_count(len(values))
        return [self.image(v, f"instances[{i}]") for i, v in enumerate(values)]

    def check_count(self, images: int) -> None:
        if images > self.max_images:
            raise Refused(413, f"the request holds {images} images, above the limit of {self.max_images} per request "
                               "(--max-images); split it")

    def image(self, value: Any, where: str) -> np.ndarray:
        """One IMAGE: a base64 PNG/JPEG string, a nested H x W [x C] list or an array of 0..255
        values, as `load_image` converts it."""
        size, channels = self.model.input_size, self.model.channels
        try:
            if isinstance(value, str):
                return decode_image(_encoded_image(value, where), size, channels)
            if isinstance(value, (list, np.ndarray)):
                return load_image(_array(value, where) if isinstance(value, list) else value, size, channels)
        except OnnxplainError as exc:
            raise Refused(400, f"{where}: {exc}") from None
        raise Refused(400, f"{where} must be a base64 PNG/JPEG string or a nested H x W x C list of numbers, "
                           f"got {type(value).__name__}")

    def _options(self, method: str, explainer, parameters: dict) -> dict:
        """The method's options from a request's parameters: names it takes, values as JSON gives
        them (nested lists as arrays: features, baseline images); target and seed as given."""
        options = {**get_method(method, "input").defaults,
                   **{k: v for k, v in parameters.items() if k not in TOP_LEVEL}}
        for name, why in SERVED_OPTIONS.items():
            if name in options:
                raise Refused(400, f"option {name!r} {why} and cannot be set over HTTP")
        names = _option_names(explainer.attribute)
        unknown = sorted(set(options) - names) if names is not None else []
        if unknown:
            raise Refused(400, f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                               f"method {method!r}; it takes: {', '.join(sorted(names) + list(TOP_LEVEL[1:]))}")
        options = {k: _array(v, f"parameters.{k}") if isinstance(v, list) else v for k, v in options.items()}
        seed = parameters.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise Refused(400, f'"seed" must be a non-negative integer, got {seed!r}')
        options["seed"] = seed
        if "target" in parameters:
            options["target"] = parameters["target"]
        return options

    def infer_v2(self, payload: Any) -> dict:
        """The V2 inference answer: class probabilities of the one input tensor's images."""
        if not isinstance(payload, dict):
            raise Refused(400, 'the request must be a JSON object {"inputs": [TENSOR]}')
        inputs = _field(payload, "inputs", list)
        if len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise Refused(400, f'"inputs" must hold one tensor object (the images), got {len(inputs)} items')
        tensor = inputs[0]
        shape, datatype = _field(tensor, "shape", list), _field(tensor, "datatype", str)
        data = _field(tensor, "data", list)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise Refused(400, f'"shape" must be a list of non-negative integers, got {shape!r}')
        if datatype == "BYTES":
            if len(shape) != 1 or shape[0] != len(data):
                raise Refused(400, f'BYTES input: "shape" must be [N] with N = {len(data)} images, got {shape}')
            images = self.images(data)
        elif datatype in V2_DTYPES:
            if len(shape) == 3:
                shape = [1] + shape
            if len(shape) != 4 or not 0 < shape[1] * shape[2] <= MAX_IMAGE_PIXELS or shape[0] < 1:
                raise Refused(400, f'"shape" must be [N, H, W, C] (or [H, W, C]) with N >= 1 and at most '
                                   f"{MAX_IMAGE_PIXELS} pixels per image, got {tensor['shape']}")
            self.check_count(shape[0])
            flat = _array(data, "inputs[0].data").reshape(-1)
            if flat.size != math.prod(shape):
                raise Refused(400, f'"data" holds {flat.size} values but "shape" {tensor["shape"]} needs '
                                   f"{math.prod(shape)}")
            batch = flat.reshape(shape)
            images = [self.image(im, f"inputs[0] image {i}") for i, im in enumerate(batch)]
        else:
            raise Refused(400, f'"datatype" must be BYTES or one of {", ".join(V2_DTYPES)}, got {datatype!r}')
        probabilities = self.model.predict(np.stack(images))
        answer = {"model_name": self.name,
                  "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape),
                               "data": probabilities.ravel().tolist()}]}
        if "id" in payload:
            answer["id"] = payload["id"]
        return answer

    def metadata_v2(self) -> dict:
        h, w = self.model.input_size
        return {"name": self.name, "versions": ["1"], "platform": "onnxruntime_onnx",
                "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, h, w, self.model.channels]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, self.model.num_classes]}],
                "parameters": {"methods": self.methods, "preprocess": self.model.preprocess.to_dict()}}


# ---- request parsing ---------------------------------------------------------------------------------

def parse_json(body: bytes) -> Any:
    """A request body as JSON; NaN and Infinity (which JSON does not have) are refused."""
    def refuse(constant: str):
        raise Refused(400, f"the request holds {constant}, which JSON does not allow: send finite numbers")

    try:
        return json.loads(body, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, f"the request body is not valid JSON: {str(exc)[:200]}") from None


def _field(payload: dict, name: str, kind: type) -> Any:
    if name not in payload:
        raise Refused(400, f"the request has no {name!r}")
    if not isinstance(payload[name], kind):
        raise Refused(400, f"{name!r} must be a JSON {kind.__name__}, got {type(payload[name]).__name__}")
    return payload[name]


def _option_names(attribute: Callable) -> set[str] | None:
    """The method options an `attribute` takes by name (None: any, it has **kwargs), without the
    image and what the server sets itself."""
    parameters = inspect.signature(attribute).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - \
        {"image", "cancel", *TOP_LEVEL}


def _array(value: list, where: str) -> np.ndarray:
    """A rectangular nested JSON list of numbers as an int64 or float64 array."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        array = None
    if array is None or array.dtype.kind not in "if":
        raise Refused(400, f"{where} must be a rectangular nested list of numbers")
    if array.ndim >= 2 and array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        raise Refused(400, f"{where} is {array.shape[0]} x {array.shape[1]}, over {MAX_IMAGE_PIXELS} pixels")
    return array


def _encoded_image(text: str, where: str) -> bytes:
    """The bytes of a base64 PNG or JPEG whose declared size is at most MAX_IMAGE_PIXELS."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, f"{where} is not valid base64 (images are base64 PNG/JPEG strings)") from None
    size = declared_size(data)
    if size is None:
        raise Refused(400, f"{where} is not a PNG or JPEG image (or its header is cut short)")
    if size[0] * size[1] > MAX_IMAGE_PIXELS or 0 in size:
        raise Refused(400, f"{where} declares a {size[0]} x {size[1]} image; at most {MAX_IMAGE_PIXELS} pixels "
                           "are accepted")
    return data


JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # SOFn markers


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) that a PNG or JPEG header declares, read before decoding; None otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in JPEG_FRAMES:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return height, width
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def encoded_array(array: np.ndarray, dtype: str = "<f4") -> dict:
    """{"shape", "data": base64 of the array's bytes as `dtype`}."""
    return {"shape": list(array.shape), "data": base64.b64encode(np.ascontiguousarray(array, dtype).tobytes()).decode()}


def decoded_map(encoded: dict, dtype: str = "<f4") -> np.ndarray:
    """The array of an `encoded_array` answer (for clients)."""
    return np.frombuffer(base64.b64decode(encoded["data"]), dtype).reshape(encoded["shape"])


def explanation_json(result) -> dict:
    """An Explanation as the explain answer holds it: its record (no file names) with every map
    (and, for multi, every sufficient set as a uint8 0/1 mask) encoded."""
    record = {k: v for k, v in result.record().items() if k != "files"}
    record["maps"] = {str(t): encoded_array(m) for t, m in result.maps.items()}
    if "explanations" in record:
        record["explanations"] = [{**e.record(), "mask": encoded_array(e.mask, "u1")} for e in result.explanations]
    return record


# ---- HTTP ----------------------------------------------------------------------------------------------

def create_app(service: Service):
    """The FastAPI application serving `service`."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="onnxplain", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    name = service.name

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException):
        message = f"no such route; this server serves model {name!r}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"error": str(exc)[:300]}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unexpected failure")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {str(exc)[:300]}"}, status_code=500)

    def model(requested: str) -> None:
        if requested != name:
            raise Refused(404, f"unknown model {requested!r}; this server serves {name!r}")

    too_large = Refused(413, f"the request is larger than {service.max_request_bytes} bytes (--max-request-mb)")

    async def body(request: Request) -> bytes:
        """The request body, refused (413) past max_request_bytes without reading the rest."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > service.max_request_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def answer(request: Request, kind: str, work: Callable[[bytes, threading.Event], dict]):
        """Checks the declared size (413), reads the body (408 past BODY_TIMEOUT_S), admits the
        request (429 when full), runs work(body, cancel) in the pool of its kind and answers; a client that leaves
        cancels its work."""
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > service.max_request_bytes:
            raise too_large
        try:
            data = await asyncio.wait_for(body(request), BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise Refused(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None
        service.admit()
        cancel = threading.Event()
        future = service.start(kind, lambda: work(data, cancel))
        waiting = asyncio.wrap_future(future)
        while not waiting.done():
            await asyncio.wait([waiting], timeout=DISCONNECT_POLL_S)
            if not waiting.done() and await request.is_disconnected():
                cancel.set()
                future.cancel()
                await asyncio.wait([waiting])
                raise Refused(499, "the client closed the connection")
        return JSONResponse(waiting.result())

    @app.get("/v1/models/{requested}")
    @app.get("/v2/models/{requested}/ready")
    async def model_ready(requested: str):
        model(requested)
        return {"name": name, "ready": service.ready}

    @app.post("/v1/models/{requested}:predict")
    async def v1_predict(requested: str, request: Request):
        model(requested)
        return await answer(request, "predict", lambda data, _cancel: service.predict(parse_json(data)))

    @app.post("/v1/models/{requested}:explain")
    async def v1_explain(requested: str, request: Request):
        model(requested)
        arrived = time.perf_counter()
        return await answer(request, "explain", lambda data, cancel: service.explain(parse_json(data), arrived, cancel))

    @app.get("/v2/health/live")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready():
        return {"ready": service.ready}

    @app.get("/v2/models/{requested}")
    async def v2_metadata(requested: str):
        model(requested)
        return service.metadata_v2()

    @app.post("/v2/models/{requested}/infer")
    async def v2_infer(requested: str, request: Request):
        model(requested)
        return await answer(request, "predict", lambda data, _cancel: service.infer_v2(parse_json(data)))

    @app.get("/stats")
    async def stats():
        return service.stats()

    return app
