"""Speed against peer tools: onnxplain vs Captum's Occlusion, DIANNA's RISE, shap's Partition
explainer and lime, on the same ONNX model, images and evaluation counts, interleaved in one run.

    python bench/peers.py [--images chelsea,coffee] [--reps 3] [--json OUT] [--quick] [--extended]
                          [--peers-python /work/venv-peers/bin/python]
                          [--dianna-python /work/venv-dianna/bin/python] [--update-summary]

Peers run in their own venvs (outside the repository), installed with:

    python3 -m venv /work/venv-peers
    /work/venv-peers/bin/pip install torch==2.13.0          # first: the local CPU wheel
    /work/venv-peers/bin/pip install captum==0.9.0 shap==0.51.0 lime==0.2.0.1 onnxruntime==1.32.0 \\
        numpy opencv-python-headless                        # opencv: shap's inpaint/blur maskers
    python3 -m venv /work/venv-dianna
    /work/venv-dianna/bin/pip install torch==2.13.0
    /work/venv-dianna/bin/pip install dianna==1.8.1 onnxruntime==1.32.0

The bench writes a worker script to a temporary folder and starts it once per venv (a long-lived
subprocess that answers one JSON line per job). A peer whose venv or import is missing is
reported as "not installed: <reason>" and the run goes on.

What is compared (model EfficientNet-Lite0, preset "efficientnet-lite": (v - 127) / 128, NCHW
224 x 224; images from scikit-image through `ox.load_image(array, (224, 224))`; the explained
class is onnxplain's top-1 for every tool; maps in probabilities unless said):

  occlusion  onnxplain `Occlusion` window 32 stride 16 (169 windows + the clean image = 170
             evaluations, batch "auto", baseline "mean" = 0 after preprocessing) against Captum
             `Occlusion` with sliding_window_shapes (3, 32, 32), strides (3, 16, 16), baselines 0
             on the preprocessed input, perturbations_per_eval 1 (its default), 16 and 64. The
             windows are identical, so the maps are compared (Pearson r, max |difference|).
  RISE       onnxplain `RISE` n_masks 500, grid 8, p_keep 0.5 (501 evaluations: it also scores
             the clean image) against DIANNA's RISE (n_masks 500, feature_res 8, p_keep 0.5, the
             model given as its path, as DIANNA documents, at batch_size 20 and 100; 500
             evaluations). DIANNA builds a new onnxruntime session for every batch and masks to
             black (pixel 0): its cost is counted as it is.
  shap       shap `Partition` explainer (shap.Explainer on an Image masker filled with 127, i.e.
             onnxplain's baseline; max_evals 500, its default batch_size 50, outputs = the class;
             500 evaluations) against the same onnxplain RISE 500 row (501 evaluations).
  lime       `LimeImageExplainer.explain_instance` (num_samples 500 including the original image,
             batch_size 10 (its default), hide_color 127, segmentation_fn returning a fixed SLIC
             map of ~50 superpixels) against onnxplain `RISE(features=that map, n_masks=499)`
             (500 evaluations: random superpixel subsets too) and onnxplain
             `Occlusion(features=that map)` (one evaluation per superpixel + 1).
  pure       onnxruntime `session.run` on onnxplain's own session over copies of the preprocessed
             image at batch sizes 1, 4, 16 and 64, measured in every rep; the best throughput
             (median over reps, then the best batch size) is the ideal: "x ideal" = wall /
             (evaluations / best throughput), i.e. 1.00 = nothing but inference at the best batch.
  --extended adds Captum ppe 170 (all windows in one batch), DIANNA with a callable that reuses
             one session (batch 100), shap with `inpaint_telea` and lime at batch_size 64.

What is timed: onnxplain's `attribute` call in this process (model loaded once, before); in a
worker, the explanation call from the HWC float image to the H x W numpy map (conversions to the
tool's input type, its masking, inference, its own post-processing), excluding imports, the
worker's session creation and shap's masker / explainer construction (recorded apart). DIANNA's
per-batch session creation is inside its call and is timed. Evaluations are counted by wrapping
`onnxruntime.InferenceSession.run` in the worker (images per call summed) and by onnxplain's own
counter; "infer s" is the time inside `session.run`. Reps are interleaved: in every rep, each
group (a onnxplain row next to its peers) runs back to back, groups in a rotated order.

Noise: the bench reads /proc/stat around every job; "other" is the number of cores that processes
outside this bench kept busy meanwhile (the most over the row's reps); above 0.2 the run is flagged.

Output: a table on stdout; JSON (default bench/results/peers.json, gitignored); with
`--update-summary` also bench/peers_summary.json. Targets (from the performance issue): faster
than Captum's Occlusion at every perturbations_per_eval and >= 1.15x at its best; >= 3x DIANNA's
RISE (at its better batch size).
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import io
import json
import math
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
DEFAULT_MODEL = BENCH.parents[1] / "shared/models/efficientnet_lite0.onnx"
DEFAULT_JSON = BENCH / "results" / "peers.json"
SUMMARY_JSON = BENCH / "peers_summary.json"
PRESET = "efficientnet-lite"
PURE_BATCHES = (1, 4, 16, 64)
NOISY = 0.2  # cores kept busy by other processes above which a run is flagged as noisy

FULL: dict[str, Any] = {"window": 32, "stride": 16, "ppe": (1, 16, 64), "masks": 500, "grid": 8, "dianna_batches": (20, 100),
        "shap_evals": 500, "lime_samples": 500, "superpixels": 50, "pure_images": 128, "reps": 3,
        "images": "chelsea,coffee"}
QUICK: dict[str, Any] = {"window": 56, "stride": 56, "ppe": (1, 16), "masks": 64, "grid": 8, "dianna_batches": (20, 100),
         "shap_evals": 64, "lime_samples": 64, "superpixels": 50, "pure_images": 32, "reps": 1,
         "images": "chelsea"}

# ---------------------------------------------------------------------------------------------
# The worker: runs inside a peer's venv, one process per venv, one JSON line per job.
WORKER = r'''
import base64, io, json, os, sys, time, traceback
import numpy as np
import onnxruntime as ort

RESULTS = os.fdopen(os.dup(1), "w")  # the result channel; whatever libraries print goes to stderr
os.dup2(2, 1)
sys.stdout = sys.stderr

STATS = {"calls": 0, "images": 0, "seconds": 0.0, "sessions": 0}
_run, _init = ort.InferenceSession.run, ort.InferenceSession.__init__


def counted_run(self, output_names, input_feed, *args, **kwargs):
    t0 = time.perf_counter()
    out = _run(self, output_names, input_feed, *args, **kwargs)
    STATS["seconds"] += time.perf_counter() - t0
    STATS["calls"] += 1
    STATS["images"] += int(next(iter(input_feed.values())).shape[0])
    return out


def counted_init(self, *args, **kwargs):
    STATS["sessions"] += 1
    _init(self, *args, **kwargs)


ort.InferenceSession.run, ort.InferenceSession.__init__ = counted_run, counted_init

MODEL = sys.argv[1]
TOOLS, MISSING = {"onnxruntime": ort.__version__, "numpy": np.__version__}, {}
for name in sys.argv[2].split(","):
    try:
        module = __import__(name)
        if name == "captum":
            import captum.attr, torch
            TOOLS["torch"] = torch.__version__
        if name == "lime":
            import lime.lime_image
            from importlib.metadata import version
            module.__version__ = version("lime")
        TOOLS[name] = getattr(module, "__version__", "?")
    except Exception as exc:  # reported as "not installed"
        MISSING[name] = f"{type(exc).__name__}: {exc}"[:300]

options = ort.SessionOptions()
options.log_severity_level = 3
SESSION = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
IN_NAME, OUT_NAME = SESSION.get_inputs()[0].name, SESSION.get_outputs()[0].name


def preprocess(hwc):  # (N, H, W, 3) pixels 0..255 -> (N, 3, H, W) float32, the preset
    return np.ascontiguousarray(((np.asarray(hwc, np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2))


def logits(nchw):
    return SESSION.run([OUT_NAME], {IN_NAME: np.ascontiguousarray(nchw, np.float32)})[0]


def softmax(z):  # as onnxplain: float64, returned as float32
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def encode(array):
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, np.float32))
    return base64.b64encode(buf.getvalue()).decode()


SHAP_CACHE = {}


def job_calibrate(job, image):
    x = preprocess(image[None])
    out = {}
    for b in job["batch_sizes"]:
        batch = np.repeat(x, b, axis=0)
        logits(batch)  # warm-up
        runs = max(1, job["images"] // b)
        t0 = time.perf_counter()
        for _ in range(runs):
            logits(batch)
        out[str(b)] = runs * b / (time.perf_counter() - t0)
    return None, {"throughput": out}


def job_captum(job, image):
    import torch
    from captum.attr import Occlusion

    def forward(t):
        return torch.from_numpy(softmax(logits(t.detach().numpy())))

    w, s = job["window"], job["stride"]
    t0 = time.perf_counter()
    x = torch.from_numpy(preprocess(image[None]))
    a = Occlusion(forward).attribute(x, sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=0.0,
                                     target=job["target"], perturbations_per_eval=job["ppe"])
    saliency = a[0, 0].detach().numpy().copy()  # the 3 channels are identical (windows span them)
    return time.perf_counter() - t0, saliency


def job_shap(job, image):
    import shap

    key = (job["masker"], image.shape)
    extra = {}
    if key not in SHAP_CACHE:
        t0 = time.perf_counter()
        spec = job["masker"]
        value = np.full(image.shape, float(spec)) if spec.replace(".", "").isdigit() else spec
        masker = shap.maskers.Image(value, image.shape)
        SHAP_CACHE[key] = shap.Explainer(lambda x: softmax(logits(preprocess(x))), masker)
        extra["construct_s"] = time.perf_counter() - t0
    explainer = SHAP_CACHE[key]
    t0 = time.perf_counter()
    e = explainer(image[None].astype(np.float64), max_evals=job["max_evals"], batch_size=job["batch_size"],
                  outputs=[job["target"]], silent=True)
    saliency = np.asarray(e.values)[0, ..., 0].sum(axis=-1)
    return time.perf_counter() - t0, saliency, extra


def job_lime(job, image):
    from lime import lime_image

    labels = np.load(job["features"])
    t0 = time.perf_counter()
    e = lime_image.LimeImageExplainer(random_state=job["seed"]).explain_instance(
        image.astype(np.float64), lambda b: softmax(logits(preprocess(b))), labels=(job["target"],),
        top_labels=None, hide_color=127, num_samples=job["num_samples"], batch_size=job["batch_size"],
        segmentation_fn=lambda _: labels, random_seed=job["seed"])
    weights = np.zeros(labels.max() + 1)
    for f, v in e.local_exp[job["target"]]:
        weights[f] = v
    saliency = weights[labels]
    return time.perf_counter() - t0, saliency


def job_dianna(job, image):
    import dianna

    prep = lambda x: ((np.asarray(x, np.float32) - 127) / 128).transpose(0, 3, 1, 2).astype(np.float32)
    model = MODEL if job["mode"] == "path" else (lambda x: logits(x))
    t0 = time.perf_counter()
    maps = dianna.explain_image(model, image, method="RISE", labels=[job["target"]], n_masks=job["n_masks"],
                                feature_res=job["feature_res"], p_keep=job["p_keep"], axis_labels={2: "channels"},
                                batch_size=job["batch_size"], preprocess_function=prep)
    saliency = np.asarray(maps)[0]
    return time.perf_counter() - t0, saliency


JOBS = {"calibrate": job_calibrate, "captum": job_captum, "shap": job_shap, "lime": job_lime, "dianna": job_dianna}


def reply(obj):
    RESULTS.write("@@" + json.dumps(obj) + "\n")
    RESULTS.flush()


job_calibrate({"batch_sizes": [1, 16], "images": 16}, np.full((224, 224, 3), 127.0, np.float32))  # warm-up
reply({"ready": True, "tools": TOOLS, "missing": MISSING, "python": sys.version.split()[0],
       "ort_threads": SESSION.get_session_options().intra_op_num_threads})
for line in sys.stdin:
    job = json.loads(line)
    try:
        image = np.load(job["image"])
        for k in STATS:
            STATS[k] = 0
        got = JOBS[job["kind"]](job, image)
        wall, saliency, extra = (got + ({},))[:3] if len(got) == 2 else got
        stats = dict(STATS)
        out = {"ok": True, "wall_s": wall, "evaluations": stats["images"], "calls": stats["calls"],
               "inference_s": stats["seconds"], "sessions": stats["sessions"], **(extra or {})}
        if isinstance(saliency, dict):
            out.update(saliency)
        elif saliency is not None:
            out["map"] = encode(saliency)
        reply(out)
    except Exception:
        reply({"ok": False, "error": traceback.format_exc()[-1500:]})
'''


class Worker:
    """One long-lived worker process in a peer's venv; `ask` sends a job and waits for its answer."""

    def __init__(self, name: str, python: str, modules: list[str], model: Path, folder: Path):
        self.name, self.modules = name, modules
        self.missing: dict[str, str] = {}
        self.tools: dict[str, str] = {}
        self.proc: subprocess.Popen[str] | None = None
        if not Path(python).is_file():
            self.missing = {m: f"not installed: {python} not found" for m in modules}
            return
        script = folder / "peers_worker.py"
        script.write_text(WORKER)
        self.log = open(folder / f"{name}.log", "w")
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([python, str(script), str(model), ",".join(modules)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=folder)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self.lines.put(line[2:])
        self.lines.put(None)

    def wait_ready(self, timeout: float = 300) -> None:
        if self.proc is None:
            return
        answer = self._get(timeout)
        if answer is None or not answer.get("ready"):
            reason = (answer or {}).get("error", f"the worker did not start (see {self.log.name})")
            self.missing = {m: f"not installed: {reason}" for m in self.modules}
            self.close()
            return
        self.tools = answer["tools"]
        self.info = answer
        self.missing = {m: f"not installed: {why}" for m, why in answer["missing"].items()}

    def _get(self, timeout: float) -> dict | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "error": f"no answer in {timeout:.0f} s"}
        return None if line is None else json.loads(line)

    def ask(self, job: dict, timeout: float = 900) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            return {"ok": False, "error": "worker not running"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = self._get(timeout)
        return answer if answer is not None else {"ok": False, "error": "worker exited"}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def decode(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)))


# ---------------------------------------------------------------------------------------------
def load_images(names: list[str]):
    import skimage.data

    import onnxplain as ox

    return [(n, ox.load_image(getattr(skimage.data, n)(), (224, 224))) for n in names]


def cpu_snapshot(pids: list[int]) -> tuple[float, float, float]:
    """(wall clock, busy CPU seconds of the whole machine, CPU seconds of this bench's processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    ours = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            ours += (int(parts[11]) + int(parts[12])) / tick  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return time.perf_counter(), busy, ours


def foreign_load(a, b) -> float:
    """Mean number of cores that other processes kept busy between two snapshots."""
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / max(b[0] - a[0], 1e-9))


def superpixels(image: np.ndarray, wanted: int) -> np.ndarray:
    """SLIC labels (H x W int32) with the count closest to `wanted` over a few n_segments."""
    from skimage.segmentation import slic

    pixels = np.clip(image, 0, 255).round().astype(np.uint8)
    best = None
    for n in range(wanted - 10, 2 * wanted + 1, 5):
        labels = slic(pixels, n_segments=n, compactness=10, start_label=0).astype(np.int32)
        if best is None or abs(labels.max() + 1 - wanted) < abs(best.max() + 1 - wanted):
            best = labels
    assert best is not None
    return best


def pure_throughput(model, image: np.ndarray, images: int) -> dict[str, float]:
    """Images per second of `session.run` alone on onnxplain's session, per batch size."""
    clean = np.empty((1,) + model.input_shape, np.float32)
    model.preprocessor.apply(image[None].astype(np.float32), clean)
    run, names, feed = model.session.run, [model.output_name], model.input_name
    out = {}
    for b in PURE_BATCHES:
        batch = np.ascontiguousarray(np.repeat(clean, b, axis=0))
        run(names, {feed: batch})  # warm-up
        runs = max(1, images // b)
        t0 = time.perf_counter()
        for _ in range(runs):
            run(names, {feed: batch})
        out[str(b)] = runs * b / (time.perf_counter() - t0)
    return out


def plan(cfg: dict, extended: bool) -> list[list[dict]]:
    """Groups of rows: an onnxplain row first, then the peers it is compared with."""
    w, s, m = cfg["window"], cfg["stride"], cfg["masks"]
    occ: list[dict[str, Any]] = [{"id": "onnxplain-occlusion", "tool": "onnxplain", "setting": f"Occlusion {w}/{s}, batch auto",
            "run": ("occlusion", {"window": w, "stride": s})}]
    ppes = list(cfg["ppe"]) + ([170] if extended else [])
    for p in ppes:
        occ.append({"id": f"captum-occlusion-ppe{p}", "tool": "captum", "vs": "onnxplain-occlusion",
                    "setting": f"Occlusion {w}/{s}, ppe {p}{' (default)' if p == 1 else ''}",
                    "job": {"kind": "captum", "window": w, "stride": s, "ppe": p}})
    rise: list[dict[str, Any]] = [{"id": "onnxplain-rise", "tool": "onnxplain", "setting": f"RISE {m} masks, grid {cfg['grid']}, batch auto",
             "run": ("rise", {"n_masks": m, "grid": cfg["grid"], "p_keep": 0.5})}]
    for b in cfg["dianna_batches"]:
        rise.append({"id": f"dianna-rise-b{b}", "tool": "dianna", "vs": "onnxplain-rise",
                     "setting": f"RISE {m} masks, res {cfg['grid']}, batch {b}",
                     "job": {"kind": "dianna", "n_masks": m, "feature_res": cfg["grid"], "p_keep": 0.5,
                             "batch_size": b, "mode": "path"}})
    if extended:
        rise.append({"id": "dianna-rise-b100-callable", "tool": "dianna", "vs": "onnxplain-rise",
                     "setting": f"RISE {m} masks, batch 100, one session",
                     "job": {"kind": "dianna", "n_masks": m, "feature_res": cfg["grid"], "p_keep": 0.5,
                             "batch_size": 100, "mode": "callable"}})
    maskers = ["127"] + (["inpaint_telea"] if extended else [])
    for mk in maskers:
        rise.append({"id": f"shap-partition-{mk}", "tool": "shap", "vs": "onnxplain-rise",
                     "setting": f"Partition {cfg['shap_evals']}, mask {mk}, batch 50",
                     "job": {"kind": "shap", "masker": mk, "max_evals": cfg["shap_evals"], "batch_size": 50}})
    n = cfg["lime_samples"]
    lime: list[dict[str, Any]] = [{"id": "onnxplain-rise-superpixels", "tool": "onnxplain", "setting": f"RISE features=SLIC, {n - 1} masks",
             "run": ("rise-features", {"n_masks": n - 1, "p_keep": 0.5})},
            {"id": "onnxplain-occlusion-superpixels", "tool": "onnxplain", "setting": "Occlusion features=SLIC",
             "run": ("occlusion-features", {})}]
    for b in [10] + ([64] if extended else []):
        lime.append({"id": f"lime-b{b}", "tool": "lime", "vs": "onnxplain-rise-superpixels",
                     "also_vs": "onnxplain-occlusion-superpixels",
                     "setting": f"{n} samples, SLIC, batch {b}{' (default)' if b == 10 else ''}",
                     "job": {"kind": "lime", "num_samples": n, "batch_size": b, "seed": 0}})
    return [occ, rise, lime]


def warm_up(model, im: dict, workers: dict, missing: dict, route: dict, folder: Path) -> None:
    """Every tool once at small counts before rep 1, untimed: first-call costs (numba JIT in shap, shap's
    masker and explainer construction, thread pools, allocations) stay out of the timings."""
    for kind, params in (("occlusion", {"window": 112, "stride": 112}), ("rise", {"n_masks": 16, "grid": 8}),
                         ("rise-features", {"n_masks": 16}), ("occlusion-features", {})):
        run_onnxplain(model, im["image"], im["labels"], im["target"], kind, params)
    base = {"image": str(folder / f"{im['name']}.npy"), "target": im["target"],
            "features": str(folder / f"{im['name']}_labels.npy")}
    jobs = [{"kind": "captum", "window": 112, "stride": 112, "ppe": 4},
            {"kind": "shap", "masker": "127", "max_evals": 32, "batch_size": 50},
            {"kind": "lime", "num_samples": 16, "batch_size": 10, "seed": 0},
            {"kind": "dianna", "n_masks": 8, "feature_res": 8, "p_keep": 0.5, "batch_size": 4, "mode": "path"}]
    for job in jobs:
        if job["kind"] not in missing:
            got = workers[route[job["kind"]]].ask({**base, **job})
            if not got.get("ok"):
                print(f"warm-up {job['kind']} failed: {got.get('error', '?')[-300:]}", flush=True)


def run_onnxplain(model, image, labels, target, kind, params) -> dict:
    import onnxplain as ox

    evals, inference = model.evaluations, model.inference_seconds
    t0 = time.perf_counter()
    if kind == "occlusion":
        r = ox.Occlusion(model).attribute(image, target, **params)
    elif kind == "rise":
        r = ox.RISE(model).attribute(image, target, **params)
    elif kind == "rise-features":
        r = ox.RISE(model).attribute(image, target, features=labels, **params)
    else:
        r = ox.Occlusion(model).attribute(image, target, features=labels)
    wall = time.perf_counter() - t0
    return {"ok": True, "wall_s": wall, "evaluations": model.evaluations - evals,
            "inference_s": model.inference_seconds - inference, "map": r.maps[target]}


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return {"pearson": r, "max_abs_diff": float(np.abs(a - b).max()), "max_abs": float(np.abs(a).max())}


def rounded_all(obj, digits: int = 4):
    """The same structure with every float rounded (for the committed summary)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded_all(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded_all(v, digits) for v in obj]
    return obj


def rounded(values) -> list[float]:
    return [round(v, 2) for v in values]


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--images", help="comma-separated scikit-image names (default chelsea,coffee; quick: chelsea)")
    ap.add_argument("--reps", type=int, help="interleaved repetitions (default 3; quick: 1)")
    ap.add_argument("--quick", action="store_true", help="small counts, one image, one rep (< 2 minutes)")
    ap.add_argument("--extended", action="store_true", help="also Captum ppe 170, DIANNA with one session, shap "
                                                            "inpaint_telea, lime batch 64")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--update-summary", action="store_true", help=f"also write {SUMMARY_JSON}")
    ap.add_argument("--peers-python", default="/work/venv-peers/bin/python", help="venv with captum, shap, lime")
    ap.add_argument("--dianna-python", default="/work/venv-dianna/bin/python", help="venv with dianna")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    import onnxplain as ox

    cfg = dict(QUICK if args.quick else FULL)
    reps = args.reps or cfg["reps"]
    names = (args.images or cfg["images"]).split(",")
    started = time.perf_counter()
    load_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    workers = {"peers": Worker("peers", args.peers_python, ["captum", "shap", "lime"], args.model, folder),
               "dianna": Worker("dianna", args.dianna_python, ["dianna"], args.model, folder)}
    model = ox.Model(str(args.model), preset=PRESET, progress=False)
    images = []
    for name, image in load_images(names):
        target = int(model.predict(image).argmax())
        labels = superpixels(image, cfg["superpixels"])
        np.save(folder / f"{name}.npy", image)
        np.save(folder / f"{name}_labels.npy", labels)
        images.append({"name": name, "image": image, "target": target, "labels": labels,
                       "segments": int(labels.max() + 1)})
    for w in workers.values():
        w.wait_ready()
    missing = {k: v for w in workers.values() for k, v in w.missing.items()}
    route = {"captum": "peers", "shap": "peers", "lime": "peers", "dianna": "dianna"}
    groups = plan(cfg, args.extended)
    rows = {(im["name"], r["id"]): {**{k: v for k, v in r.items() if k not in ("run", "job")}, "image": im["name"],
                                    "walls": [], "inference": [], "foreign": [], "evaluations": None, "extra": {}}
            for im in images for g in groups for r in g}
    pure, worker_pure = [], {}
    for name, w in workers.items():  # the peers' own sessions, for reference
        if w.proc is not None and w.proc.poll() is None:
            got = w.ask({"kind": "calibrate", "image": str(folder / f"{names[0]}.npy"), "batch_sizes": PURE_BATCHES,
                         "images": cfg["pure_images"]})
            worker_pure[name] = got.get("throughput", got.get("error"))
    warm_up(model, images[0], workers, missing, route, folder)
    pids = [os.getpid()] + [w.proc.pid for w in workers.values() if w.proc is not None]
    loads, foreign, first = [], [], cpu_snapshot(pids)
    print(f"peers bench: {len(images)} image(s) x {reps} rep(s); workers in {folder}", flush=True)
    for rep in range(reps):
        loads.append(os.getloadavg())
        snap = cpu_snapshot(pids)
        order = groups[rep % len(groups):] + groups[:rep % len(groups)]
        for im in images:
            pure.append(pure_throughput(model, im["image"], cfg["pure_images"]))
            speeds = ", ".join(f"b{b} {v:.1f}" for b, v in pure[-1].items())
            print(f"rep {rep + 1} {im['name']}: pure images/s {speeds}", flush=True)
            for group in order:
                group = group if rep % 2 == 0 else [group[0]] + group[1:][::-1]
                for r in group:
                    row = rows[(im["name"], r["id"])]
                    before = cpu_snapshot(pids)
                    if "run" in r:
                        got = run_onnxplain(model, im["image"], im["labels"], im["target"], *r["run"])
                    elif r["tool"] in missing:
                        row["status"] = missing[r["tool"]]
                        continue
                    else:
                        job = {**r["job"], "image": str(folder / f"{im['name']}.npy"), "target": im["target"],
                               "features": str(folder / f"{im['name']}_labels.npy")}
                        got = workers[route[r["tool"]]].ask(job)
                    if not got.get("ok"):
                        row["status"] = "failed: " + got.get("error", "?")[-400:]
                        print(f"  {im['name']} {r['id']} failed: {got.get('error', '?')[-300:]}", flush=True)
                        continue
                    row["foreign"].append(foreign_load(before, cpu_snapshot(pids)))
                    row["walls"].append(got["wall_s"])
                    row["inference"].append(got["inference_s"])
                    row["evaluations"] = got["evaluations"]
                    for k in ("calls", "sessions", "construct_s"):
                        if k in got:
                            row["extra"].setdefault(k, got[k])
                    row["map"] = got["map"] if isinstance(got["map"], np.ndarray) else decode(got["map"])
                    print(f"  {im['name']:<8} {r['id']:<32} {got['wall_s']:7.2f} s  {got['evaluations']:>5} evals",
                          flush=True)
        foreign.append(foreign_load(snap, cpu_snapshot(pids)))
        print(f"rep {rep + 1}: other processes kept {foreign[-1]:.2f} of {os.cpu_count()} cores busy", flush=True)
    foreign_all = foreign_load(first, cpu_snapshot(pids))
    for w in workers.values():
        w.close()
    loads.append(os.getloadavg())

    # ---- aggregate
    per_batch = {b: median([p[b] for p in pure]) for b in pure[0]}
    best_batch = max(per_batch, key=lambda b: per_batch[b])
    best = per_batch[best_batch]
    for row in rows.values():
        row.setdefault("status", "ok" if row["walls"] else "no result")
        row["wall_median_s"] = median(row["walls"])
        row["inference_median_s"] = median(row["inference"])
        row["foreign_cores_max"] = max(row["foreign"]) if row["foreign"] else None
        if row["wall_median_s"] and row["evaluations"]:
            row["x_ideal"] = row["wall_median_s"] / (row["evaluations"] / best)
            row["overhead_beyond_pure_pct"] = 100 * (row["x_ideal"] - 1)
    for (name, rid), row in rows.items():
        for key, out in (("vs", "ratio_to_onnxplain"), ("also_vs", "ratio_to_onnxplain_also")):
            ref = rows.get((name, row.get(key)))
            if ref and ref.get("wall_median_s") and row.get("wall_median_s"):
                row[out] = row["wall_median_s"] / ref["wall_median_s"]
                if key == "vs":
                    n = min(len(ref["walls"]), len(row["walls"]))
                    row["ratio_paired_median"] = median([row["walls"][i] / ref["walls"][i] for i in range(n)])
        if row["tool"] == "captum" and "map" in row and "map" in rows[(name, "onnxplain-occlusion")]:
            row["maps_agree"] = agreement(rows[(name, "onnxplain-occlusion")]["map"], row["map"])

    targets = verdicts(rows, [im["name"] for im in images])
    meta = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "quick": args.quick,
            "extended": args.extended, "reps": reps, "config": cfg, "model": args.model.name, "preset": PRESET,
            "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "python": platform.python_version(),
            "onnxruntime": ort.__version__, "numpy": np.__version__, "onnxplain": ox.__version__,
            "onnxplain_batch": model.batch_size,
            "workers": {n: {"python": getattr(w, "info", {}).get("python"), "tools": w.tools,
                            "ort_threads": getattr(w, "info", {}).get("ort_threads")} for n, w in workers.items()},
            "not_installed": missing,
            "foreign_cores_busy": {"per_rep": [round(v, 3) for v in foreign], "whole_run": round(foreign_all, 3)},
            "loadavg_1_5_15": {"start": rounded(load_start), "per_rep": [rounded(v) for v in loads[:-1]],
                               "end": rounded(loads[-1])},
            "images": [{"name": im["name"], "target": im["target"], "superpixels": im["segments"]} for im in images]}
    meta["seconds"] = time.perf_counter() - started
    report(meta, per_batch, best_batch, best, rows, groups, images, targets, worker_pure)

    clean = lambda row: {k: v for k, v in row.items() if k != "map"}  # noqa: E731
    result = {"meta": meta, "pure": {"per_rep": pure, "median_per_batch": per_batch, "best_batch": best_batch,
                                     "best_images_per_s": best, "worker_sessions": worker_pure},
              "rows": [clean(r) for r in rows.values()], "targets": targets}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.json}")
    if args.update_summary:
        keep = ("id", "image", "tool", "setting", "status", "evaluations", "wall_median_s", "inference_median_s",
                "x_ideal", "foreign_cores_max", "ratio_to_onnxplain", "ratio_to_onnxplain_also", "maps_agree")
        summary = {"meta": {k: meta[k] for k in ("date", "reps", "model", "machine", "onnxruntime", "onnxplain",
                                                 "workers", "not_installed", "foreign_cores_busy", "loadavg_1_5_15",
                                                 "images",
                                                 "seconds")},
                   "pure_best": {"batch": best_batch, "images_per_s": round(best, 2),
                                 "median_per_batch": {b: round(v, 2) for b, v in per_batch.items()}},
                   "rows": [{k: v for k, v in r.items() if k in keep} for r in rows.values()],
                   "targets": targets}
        summary = rounded_all(summary)
        SUMMARY_JSON.write_text(json.dumps(summary, indent=1, default=float) + "\n")
        print(f"wrote {SUMMARY_JSON}")
    return 0


def verdicts(rows: dict, names: list[str]) -> dict:
    """The issue's targets, per image and over the images (geometric mean of the ratios)."""
    out = {}
    captum = sorted({rid for (_, rid) in rows if rid.startswith("captum")})
    dianna = sorted({rid for (_, rid) in rows if rid.startswith("dianna-rise-b") and "callable" not in rid})
    per_setting = {rid: geomean([rows[(n, rid)].get("ratio_to_onnxplain") for n in names]) for rid in captum}
    if captum and all(rows[(n, rid)].get("ratio_to_onnxplain") for n in names for rid in captum):
        best = {n: min(rows[(n, rid)]["wall_median_s"] for rid in captum) / rows[(n, "onnxplain-occlusion")][
            "wall_median_s"] for n in names}
        out["captum_occlusion"] = {
            "ratio_per_setting_geomean": per_setting,
            "faster_at_every_setting": all(rows[(n, rid)]["ratio_to_onnxplain"] > 1 for n in names for rid in captum),
            "ratio_at_best_setting_per_image": best, "ratio_at_best_setting_geomean": geomean(best.values()),
            "target_best_1_15_met": all(v >= 1.15 for v in best.values())}
    else:
        out["captum_occlusion"] = {"status": next((rows[(n, rid)]["status"] for n in names for rid in captum
                                                   if rows[(n, rid)]["status"] != "ok"), "no result")}
    if dianna and all(rows[(n, rid)].get("ratio_to_onnxplain") for n in names for rid in dianna):
        best = {n: min(rows[(n, rid)]["wall_median_s"] for rid in dianna) / rows[(n, "onnxplain-rise")][
            "wall_median_s"] for n in names}
        out["dianna_rise"] = {
            "ratio_per_setting_geomean": {rid: geomean([rows[(n, rid)]["ratio_to_onnxplain"] for n in names])
                                          for rid in dianna},
            "ratio_at_best_batch_per_image": best, "ratio_at_best_batch_geomean": geomean(best.values()),
            "target_3x_met": all(v >= 3 for v in best.values())}
    else:
        out["dianna_rise"] = {"status": next((rows[(n, rid)]["status"] for n in names for rid in dianna
                                              if rows[(n, rid)]["status"] != "ok"), "no result")}
    for tool in ("shap", "lime"):
        ids = sorted({rid for (_, rid) in rows if rows[(names[0], rid)]["tool"] == tool})
        out[tool] = {rid: geomean([rows[(n, rid)].get("ratio_to_onnxplain") for n in names]) for rid in ids}
    return out


def report(meta, per_batch, best_batch, best, rows, groups, images, targets, worker_pure) -> None:
    print()
    print(f"onnxplain vs peers  {meta['date']}  ({'quick' if meta['quick'] else 'full'} run, {meta['reps']} rep(s), "
          f"{meta['seconds']:.0f} s)")
    fc = meta["foreign_cores_busy"]
    print(f"model {meta['model']}; machine {meta['machine']}; load average (1 min) "
          f"start {meta['loadavg_1_5_15']['start'][0]:.1f}, end {meta['loadavg_1_5_15']['end'][0]:.1f}; "
          f"other processes "
          f"kept {fc['whole_run']:.2f} cores busy on average (per rep: {', '.join(f'{v:.2f}' for v in fc['per_rep'])})")
    print("pure session.run, images/s (median over reps): " + ", ".join(
        f"batch {b}: {v:.1f}" for b, v in per_batch.items()) + f"; best batch {best_batch}: {best:.1f}/s")
    for name, wp in worker_pure.items():
        if isinstance(wp, dict):
            print(f"  ({name} worker's own session, once: " + ", ".join(f"b{b} {v:.1f}" for b, v in wp.items()) + ")")
    for tool, why in meta["not_installed"].items():
        print(f"  {tool}: {why}")
    print()
    head = (f"{'image':<9}{'tool':<10}{'setting':<38}{'evals':>6}{'wall s':>8}{'infer s':>8}{'x ideal':>8}"
            f"{'vs ox':>7}{'other':>6}  maps / note")
    print(head)
    print("-" * (len(head) + 20))
    for im in images:
        for group in groups:
            for r in group:
                row = rows[(im["name"], r["id"])]
                if row["status"] != "ok":
                    print(f"{im['name']:<9}{row['tool']:<10}{row['setting']:<38}  {row['status'][:90]}")
                    continue
                ratio = f"{row['ratio_to_onnxplain']:.2f}" if row.get("ratio_to_onnxplain") else "-"
                note = ""
                if "maps_agree" in row:
                    a = row["maps_agree"]
                    note = f"r={a['pearson']:.6f} max|d|={a['max_abs_diff']:.1e}"
                if row.get("ratio_to_onnxplain_also"):
                    note = f"vs occlusion(features): {row['ratio_to_onnxplain_also']:.1f}"
                if row["extra"].get("sessions", 0) > 1:
                    note = f"{row['extra']['sessions']} sessions built"
                print(f"{im['name']:<9}{row['tool']:<10}{row['setting']:<38}{row['evaluations']:>6}"
                      f"{row['wall_median_s']:>8.2f}{row['inference_median_s']:>8.2f}{row['x_ideal']:>8.2f}"
                      f"{ratio:>7}{row['foreign_cores_max']:>6.2f}  {note}")
    print()
    print("x ideal = wall / (evaluations / best pure throughput); vs ox = tool's wall / its onnxplain row's wall "
          "(median walls; > 1: onnxplain faster);\nother = most cores that other processes kept busy during one of "
          "the row's reps.")
    noisy_rows = sum((r.get("foreign_cores_max") or 0) > NOISY for r in rows.values())
    if meta["foreign_cores_busy"]["whole_run"] > NOISY:
        print(f"WARNING: other processes kept more than {NOISY} core busy on average during this run: timings are "
              f"noisy; rerun on a quiet machine before drawing conclusions.")
    elif noisy_rows:
        print(f"note: {noisy_rows} row(s) had a rep with other processes above {NOISY} core (the 'other' column); "
              f"the medians over reps damp a single noisy rep.")
    c, d = targets.get("captum_occlusion", {}), targets.get("dianna_rise", {})
    if "faster_at_every_setting" in c:
        every = "MET" if c["faster_at_every_setting"] else "NOT met"
        print(f"target Captum Occlusion: faster at every setting: {every} "
              f"({', '.join(f'{k.split(chr(45))[-1]} {v:.2f}x' for k, v in c['ratio_per_setting_geomean'].items())}); "
              f">= 1.15x at its best: {'MET' if c['target_best_1_15_met'] else 'NOT met'} "
              f"({', '.join(f'{k} {v:.2f}x' for k, v in c['ratio_at_best_setting_per_image'].items())})")
    else:
        print(f"target Captum Occlusion: {c.get('status')}")
    if "target_3x_met" in d:
        print(f"target DIANNA RISE >= 3x (its better batch): {'MET' if d['target_3x_met'] else 'NOT met'} "
              f"({', '.join(f'{k} {v:.2f}x' for k, v in d['ratio_at_best_batch_per_image'].items())})")
    else:
        print(f"target DIANNA RISE: {d.get('status')}")


if __name__ == "__main__":
    sys.exit(main())
