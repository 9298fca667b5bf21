"""Train the learned patch sampler shipped as ``sampler="learned"`` (issue 22).

    pip install -e ".[cpu,train]"             # torch==2.13.0 and matplotlib: training only
    python tools/train_patch_sampler.py [--steps 15000] [--out build/patch_sampler] [--resume]
    python tools/train_patch_sampler.py --evaluate python/onnxplain/data/patch_sampler.onnx

The network sees the 3K x 3K window around a K x K patch (K = 8) with the centre blanked (in
training also anything outside the image; onnxplain fills that with the image mirrored at its
border, which the held-out check measures, as it is better: `window_at`), and gives every pixel and channel of the patch a 256-level distribution:
a mixture of MIXTURE discretised logistics (as in PixelCNN++). The file follows `OnnxSampler`'s
contract: input (N, 4, 3K, 3K) float32 (pixels / 255, then the unknown mask), output
(N, 3, K, K, 3 MIXTURE) mixture parameters, from which the core draws
(`_core.logistic_mixture_patches`: 8 CDF evaluations per value instead of 256 probabilities).

Data, all bundled with installed packages (nothing downloaded): colour photos from scikit-learn
(china, flower), matplotlib (grace_hopper, Minduka_Present_Blue_Pack) and scikit-image
(hubble_deep_field, immunohistochemistry, retina, colorwheel); grey photos and textures from
scikit-image (camera, coins, moon, clock, page, text, cell, brick, grass, gravel), tinted. Views are
rescaled (short side 96..320 px, the scale photos have at a model's 224 x 224 input), flipped,
rotated, colour-jittered, given sensor-like noise (a quarter of them) and flat grey rectangles with
straight edges (photo-on-canvas composites). HELD_OUT photos are never trained on; the held-out
check draws HELD_OUT_WINDOWS windows from their 224 x 224 square crops and reports bits per
subpixel of this sampler against the default Gaussian sampler (fitted on each image, as onnxplain
does) discretised to the same 256 bins.

Deterministic for a --seed and --threads (views from one generator, batch b from a generator
keyed by (seed, b), torch seeded, deterministic algorithms); a checkpoint every --every steps makes
it resumable (--resume continues from the last one in --out, bit for bit).
"""
from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

K = 8  # patch side the sampler is trained for
WINDOW = 3 * K
MIXTURE = 3  # logistic components per subpixel
HELD_OUT = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle")
HELD_OUT_WINDOWS = 4000
WARMUP = 0.05  # share of the steps the one-cycle learning rate rises over
MIN_STEPS = 40  # warm-up past step 1 (at 20 steps it would end at step 0: a 0/0 in OneCycleLR)
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "python" / "onnxplain" / "data" / "patch_sampler.onnx"


# ---- data ---------------------------------------------------------------------------------

def training_photos() -> list[np.ndarray]:
    """uint8 H x W x 3 photos and textures (grey ones replicated), none of HELD_OUT."""
    import matplotlib
    import skimage.data
    from sklearn.datasets import load_sample_images

    colour = list(load_sample_images().images)
    sample_data = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        image = cv2.imread(str(sample_data / name), cv2.IMREAD_COLOR)
        colour.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    colour += [getattr(skimage.data, n)()[..., :3] for n in ("hubble_deep_field", "immunohistochemistry", "retina",
                                                              "colorwheel")]
    grey = [getattr(skimage.data, n)() for n in ("camera", "coins", "moon", "clock", "page", "text", "cell", "brick",
                                                  "grass", "gravel")]
    return colour + [np.repeat(g[..., None], 3, axis=2) for g in grey]


def augmented_view(photo: np.ndarray, grey: bool, rng: np.random.Generator) -> np.ndarray:
    """One random view (uint8 H x W x 3) of a photo."""
    short = rng.uniform(96, 320)
    scale = min(1.0, short / min(photo.shape[:2]))
    view = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
    view = np.rot90(view, int(rng.integers(4)))
    if rng.random() < 0.5:
        view = view[:, ::-1]
    gains = rng.uniform(0.6, 1.4, 3) if grey else rng.uniform(0.85, 1.15, 3)
    view = (view - 127.5) * rng.uniform(0.7, 1.2) + 127.5 + rng.uniform(-25, 25)
    view = view * gains
    if rng.random() < 0.25:  # sensor-like per-pixel noise
        view = view + rng.normal(0.0, rng.uniform(2, 20), view.shape)
    h, w = view.shape[:2]
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.3 else 0):  # flat rectangles, straight edges
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        view[y0:y0 + int(rng.integers(8, h)), x0:x0 + int(rng.integers(8, w))] = rng.uniform(0, 255)
    return np.ascontiguousarray(np.clip(np.rint(view), 0, 255).astype(np.uint8))


def pool_of_views(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    photos = training_photos()
    grey_from = len(photos) - 10
    return [augmented_view(photos[i], i >= grey_from, rng) for i in rng.integers(0, len(photos), count)]


def window_at(view: np.ndarray, y: int, x: int, mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(network input (4, 3K, 3K) float32 per the sampler contract, target (3, K, K) int64) of the
    patch with top-left corner (y, x) of a uint8 view. Outside the view the window is blanked and
    flagged unknown (how the shipped network was trained), or with mirror=True filled with the view
    mirrored at its border (how onnxplain's OnnxSampler feeds it: 4.62 against 4.78 held-out bits
    per subpixel on windows that cross the border)."""
    h, w = view.shape[:2]
    window = np.zeros((4, WINDOW, WINDOW), np.float32)
    if mirror:
        padded = np.pad(view, ((K, K), (K, K), (0, 0)), mode="symmetric")
        window[:3] = padded[y:y + WINDOW, x:x + WINDOW].transpose(2, 0, 1) / 255.0
    else:
        window[3] = 1.0
        y0, x0 = y - K, x - K
        sy, sx = slice(max(0, y0), min(h, y0 + WINDOW)), slice(max(0, x0), min(w, x0 + WINDOW))
        wy, wx = slice(sy.start - y0, sy.stop - y0), slice(sx.start - x0, sx.stop - x0)
        window[:3, wy, wx] = view[sy, sx].transpose(2, 0, 1) / 255.0
        window[3, wy, wx] = 0.0
    window[:3, K:2 * K, K:2 * K] = 0.0
    window[3, K:2 * K, K:2 * K] = 1.0
    return window, view[y:y + K, x:x + K].transpose(2, 0, 1).astype(np.int64)


def windows_of(views: list[np.ndarray], picks, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (B, 4, 3K, 3K), targets (B, 3, K, K)): one patch position per picked view, uniform
    over the positions fully inside it."""
    pairs = [window_at(views[v], int(rng.integers(0, views[v].shape[0] - K + 1)),
                       int(rng.integers(0, views[v].shape[1] - K + 1))) for v in picks]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def held_out_windows(seed: int = 12345) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The held-out photos' 224 x 224 square crops, and HELD_OUT_WINDOWS windows on them:
    (images, image index (W,), patch corners (W, 2), network inputs (W, 4, 3K, 3K), targets (W, 3, K, K))."""
    import skimage.data

    images = []
    for name in HELD_OUT:
        photo = getattr(skimage.data, name)()
        photo = (photo[0] if isinstance(photo, tuple) else photo)[..., :3]
        side = min(photo.shape[:2])
        y0, x0 = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        images.append(cv2.resize(photo[y0:y0 + side, x0:x0 + side], (224, 224), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(images), HELD_OUT_WINDOWS)
    corners = rng.integers(0, 224 - K + 1, (HELD_OUT_WINDOWS, 2))
    pairs = [window_at(images[v], int(y), int(x), mirror=True) for v, (y, x) in zip(which, corners)]
    return images, which, corners, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# ---- network ------------------------------------------------------------------------------

def build_network(width: int = 32):
    import torch
    from torch import nn

    class PatchSamplerNet(nn.Module):
        """(N, 4, 3K, 3K) window -> mixture parameters (N, 3, 3 * MIXTURE, K, K): for each component
        a weight logit, a mean (0..255 scale) and a log scale."""

        def __init__(self) -> None:
            super().__init__()
            w = width
            relu = nn.ReLU
            self.stem = nn.Sequential(nn.Conv2d(4, w, 3, padding=1), relu(), nn.Conv2d(w, w, 3, padding=1), relu())
            self.context = nn.Sequential(
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), relu(),
                nn.Conv2d(2 * w, 2 * w, 3, padding=1), relu(),
                nn.Conv2d(2 * w, 2 * w, 3, padding=2, dilation=2), relu(),
                nn.Conv2d(2 * w, 2 * w, 3, padding=4, dilation=4), relu())
            self.merge = nn.Sequential(nn.Conv2d(3 * w, 2 * w, 3), relu(), nn.Conv2d(2 * w, 4 * w, 1), relu())
            self.head = nn.Conv2d(4 * w, 3 * 3 * MIXTURE, 1)
            with torch.no_grad():  # start wide (scale e^3 = 20 levels), not at a sharp e^0
                self.head.bias.view(3, 3 * MIXTURE)[:, 2 * MIXTURE:] = 3.0

        def forward(self, x):
            full = self.stem(x)
            coarse = nn.functional.interpolate(self.context(full), scale_factor=2.0, mode="nearest")
            centre = torch.cat([full, coarse], 1)[:, :, K - 1:2 * K + 1, K - 1:2 * K + 1]
            out = self.head(self.merge(centre)).reshape(-1, 3, 3 * MIXTURE, K, K)
            weights, means, log_scales = out[:, :, :MIXTURE], out[:, :, MIXTURE:2 * MIXTURE], out[:, :, 2 * MIXTURE:]
            # means start at the window's known mean colour; scales bounded to 0.05..400 levels
            known = 1.0 - x[:, 3:4]
            context_mean = (x[:, :3] * known).sum((2, 3)) / known.sum((2, 3)).clamp(min=1.0)
            means = 255.0 * (context_mean[:, :, None, None, None] + 0.5 * torch.tanh(means))
            return torch.cat([weights, means, log_scales.clamp(-3.0, 6.0)], 2)

    return PatchSamplerNet()


def target_log_probabilities(params, targets):
    """log p(target) (N, 3, K, K) under the discretised logistic mixtures params (N, 3, 3M, K, K);
    targets int 0..255. The end levels take the tails."""
    import torch
    import torch.nn.functional as F

    weights, means, log_scales = params[:, :, :MIXTURE], params[:, :, MIXTURE:2 * MIXTURE], params[:, :, 2 * MIXTURE:]
    value = targets[:, :, None].to(params.dtype)
    inverse = torch.exp(-log_scales)
    upper, lower = (value + 0.5 - means) * inverse, (value - 0.5 - means) * inverse
    # the level's mass as a difference of CDFs left of the mean, of survivals right of it (no cancellation)
    mass = torch.where(value > means, torch.sigmoid(-lower) - torch.sigmoid(-upper),
                       torch.sigmoid(upper) - torch.sigmoid(lower))
    per_component = torch.where(value < 0.5, F.logsigmoid(upper), torch.where(
        value > 254.5, F.logsigmoid(-lower), torch.log(torch.clamp(mass, min=1e-12))))
    return torch.logsumexp(F.log_softmax(weights, 2) + per_component, 2)


def export_network(net, path: Path) -> None:
    """The ONNX file of the sampler contract: (N, 4, 3K, 3K) -> (N, 3, K, K, 3M) mixture parameters."""
    import onnx
    import torch

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).permute(0, 1, 3, 4, 2)

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Exported().eval(), (torch.zeros(2, 4, WINDOW, WINDOW),), str(path), input_names=["window"],
                          output_names=["mixture"], dynamic_axes={"window": {0: "n"}, "mixture": {0: "n"}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"onnxplain.sampler": "patch", "onnxplain.patch": str(K),
                                        "onnxplain.training": "tools/train_patch_sampler.py"})
    onnx.save(model, str(path))


def onnx_log_probabilities(session, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p(targets) (N, 3, K, K) under the mixtures an ONNX sampler file gives for `inputs`."""
    import torch

    params = session.run(None, {session.get_inputs()[0].name: inputs})[0]  # (N, 3, K, K, 3M)
    with torch.no_grad():
        return target_log_probabilities(torch.from_numpy(params).permute(0, 1, 4, 2, 3),
                                        torch.from_numpy(targets)).numpy()


# ---- held-out check -----------------------------------------------------------------------

def held_out_bits(onnx_path: Path) -> dict:
    """Bits per subpixel on the held-out windows: the ONNX sampler's, and the default Gaussian
    sampler's per-subpixel marginals (what it draws, clipped to 0..255) discretised to 256 bins."""
    import onnxruntime as ort
    from scipy.stats import norm

    import onnxplain as ox
    from onnxplain.demo import demo_model_path
    from onnxplain.information import GaussianSampler

    images, which, corners, inputs, targets = held_out_windows()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    learned_nats = -sum(float(onnx_log_probabilities(session, inputs[i:i + 256], targets[i:i + 256]).sum())
                        for i in range(0, len(inputs), 256))
    gaussian_nats = 0.0
    model = ox.Model(demo_model_path(), progress=False)  # any RGB model: only the image matters here
    for v, image in enumerate(images):
        sampler = GaussianSampler()
        sampler.prepare(model, image.astype(np.float32), K)
        for y, x in corners[which == v]:
            mean, cov = sampler.conditional(int(y), int(x))
            std = np.sqrt(np.clip(np.diag(cov), 1e-12, None)) * sampler.noise_scale(int(y), int(x))
            truth = image[y:y + K, x:x + K].reshape(-1).astype(np.float64)
            mean = mean.reshape(-1)
            upper = np.where(truth >= 254.5, 1.0, norm.cdf((truth + 0.5 - mean) / np.maximum(std, 1e-9)))
            lower = np.where(truth <= 0.5, 0.0, norm.cdf((truth - 0.5 - mean) / np.maximum(std, 1e-9)))
            gaussian_nats -= float(np.log(np.clip(upper - lower, 1e-12, None)).sum())
    subpixels = len(inputs) * 3 * K * K
    return {"learned_bits_per_subpixel": learned_nats / subpixels / math.log(2),
            "gaussian_bits_per_subpixel": gaussian_nats / subpixels / math.log(2),
            "windows": len(inputs), "photos": list(HELD_OUT), "floor_probability": 1e-12}


# ---- training -----------------------------------------------------------------------------

def package_versions() -> dict[str, str]:
    """The versions a run's bits depend on (a rerun elsewhere reproduces them bit for bit only with the same)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "numpy", "opencv-python-headless", "opencv-python", "scikit-image", "scikit-learn", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def train(args) -> Path:
    """Train (or resume) per args; export and return the ONNX file (in args.out)."""
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = build_network(args.width)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=WARMUP)
    step, log = 0, []
    checkpoint = out / "checkpoint.pt"
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        step, log = state["step"], state["log"]
        print(f"resumed at step {step}")
    views = pool_of_views(args.views, args.seed)
    started = time.perf_counter()
    running = None
    bar = tqdm(total=args.steps, initial=step, unit="step")
    while step < args.steps:
        rng = np.random.default_rng([args.seed, step])
        inputs, targets = windows_of(views, rng.integers(0, len(views), args.batch), rng)
        loss = -target_log_probabilities(net(torch.from_numpy(inputs)), torch.from_numpy(targets)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        step += 1
        bits = loss.item() / math.log(2)
        running = bits if running is None else 0.98 * running + 0.02 * bits
        bar.update(1)
        bar.set_postfix(bits=f"{running:.3f}")
        if step % args.every == 0 or step == args.steps:
            log.append({"step": step, "train_bits": running, "seconds": time.perf_counter() - started})
            torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                        "step": step, "log": log}, checkpoint)
    bar.close()
    net.eval()
    onnx_path = out / "patch_sampler.onnx"
    export_network(net, onnx_path)
    (out / "training.json").write_text(json.dumps(
        {"steps": args.steps, "batch": args.batch, "width": args.width, "seed": args.seed, "views": args.views,
         "lr": args.lr, "parameters": sum(p.numel() for p in net.parameters()), "packages": package_versions(),
         "seconds_this_run": round(time.perf_counter() - started, 1), "log": log}, indent=2))
    return onnx_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--views", type=int, default=4000, help="augmented views drawn once per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=250, help="checkpoint every N steps")
    parser.add_argument("--out", default=str(ROOT / "build" / "patch_sampler"))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--evaluate", metavar="ONNX", help="only the held-out check of a trained file")
    args = parser.parse_args()
    if args.steps < MIN_STEPS:
        parser.error(f"--steps must be at least {MIN_STEPS}: the one-cycle schedule warms up over {WARMUP:.0%} of them")
    onnx_path = Path(args.evaluate) if args.evaluate else train(args)
    report = held_out_bits(onnx_path)
    print(json.dumps(report, indent=2))
    if not args.evaluate:
        (onnx_path.parent / "held_out.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB); ship it with: cp {onnx_path} {SHIPPED}")


if __name__ == "__main__":
    main()
