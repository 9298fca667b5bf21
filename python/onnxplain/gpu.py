"""The core's CUDA kernels on GPU arrays (CuPy arrays or torch CUDA tensors, anything with
``__cuda_array_interface__``): the same masks, perturbations and accumulation as the CPU
functions of ``onnxplain._core``, computed in device memory.

The kernels are compiled when the build finds a CUDA toolkit (``_core.cuda_built``); they run
where a CUDA device and driver exist (``cuda_available()``). Launches go to the legacy default
stream (0), which orders them with CuPy's and torch's default streams.
"""
from __future__ import annotations

from collections.abc import Sequence

from . import _core
from .errors import OnnxplainError

_TYPESTR = {"float32": ("<f4", 4), "float64": ("<f8", 8)}


def cuda_available() -> bool:
    """Whether the CUDA kernels were built and a CUDA device is usable."""
    return bool(_core.cuda_built) and _core.cuda_device_count() > 0


def require_cuda() -> None:
    """Raises a clear error when the CUDA kernels cannot run here."""
    if not _core.cuda_built:
        raise OnnxplainError("onnxplain was built without CUDA kernels (no CUDA toolkit at build time); "
                             "reinstall with nvcc on PATH")
    if _core.cuda_device_count() == 0:
        raise OnnxplainError("no CUDA device is available (no GPU or no NVIDIA driver)")


def _pointer(array, name: str, dtype: str, shape: Sequence[int | None]) -> tuple[int, tuple[int, ...]]:
    """Device pointer and shape of a C-contiguous GPU array of `dtype` whose shape matches
    `shape` (None = any size)."""
    interface = getattr(array, "__cuda_array_interface__", None)
    if interface is None:
        raise OnnxplainError(f"{name} must be a GPU array (CuPy or a torch CUDA tensor), got {type(array).__name__}")
    typestr, size = _TYPESTR[dtype]
    got = tuple(int(s) for s in interface["shape"])
    if interface["typestr"] != typestr:
        raise OnnxplainError(f"{name} must have dtype {dtype}, got {interface['typestr']}")
    if len(got) != len(shape) or any(want is not None and want != g for want, g in zip(shape, got)):
        raise OnnxplainError(f"{name} must have shape {tuple(shape)} (None = any), got {got}")
    strides = interface.get("strides")
    if strides is not None:
        expected, step = [], size
        for extent in reversed(got):
            expected.append(step)
            step *= extent
        if tuple(strides) != tuple(reversed(expected)):
            raise OnnxplainError(f"{name} must be C-contiguous")
    return int(interface["data"][0]), got


def occlusion_masks(height: int, width: int, window: int, stride: int, first: int, out) -> None:
    """Writes occlusion masks first..first+len(out)-1 into out (count, height, width) float32."""
    require_cuda()
    if not 1 <= window <= min(height, width) or stride < 1:
        raise OnnxplainError(f"window must be in 1..{min(height, width)} and stride >= 1, got {window}, {stride}")
    pointer, shape = _pointer(out, "out", "float32", (None, height, width))
    total = len(_core.window_positions(height, window, stride)) * len(_core.window_positions(width, window, stride))
    if not 0 <= first <= total - shape[0]:
        raise OnnxplainError(f"windows {first}..{first + shape[0]} exceed the {total} windows")
    _core.cuda_occlusion_masks(height, width, window, stride, first, shape[0], pointer, 0)


def rise_masks(seed: int, first: int, grid: int, p_keep: float, out) -> None:
    """Writes RISE masks first..first+len(out)-1 into out (count, H, W) float32."""
    require_cuda()
    pointer, (count, height, width) = _pointer(out, "out", "float32", (None, None, None))
    if not 1 <= grid <= min(height, width) or not 0 < p_keep <= 1 or first < 0:
        raise OnnxplainError(f"need 1 <= grid <= {min(height, width)}, 0 < p_keep <= 1, first >= 0; "
                             f"got {grid}, {p_keep}, {first}")
    _core.cuda_rise_masks(seed, first, count, height, width, grid, p_keep, pointer, 0)


def perturb(image, baseline, masks, out, gain: Sequence[float], bias: Sequence[float], bgr: bool = False,
            layout: str = "NCHW") -> None:
    """out[b] = (masks[b] * image + (1 - masks[b]) * baseline) * gain + bias for every mask, as
    ``PreparedInput.blend`` on the CPU: image, baseline (H, W, 3); masks (B, H, W); out (B, 3, H, W) or (B, H, W, 3)."""
    require_cuda()
    if layout not in ("NCHW", "NHWC"):
        raise OnnxplainError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    image_ptr, (h, w, _) = _pointer(image, "image", "float32", (None, None, 3))
    baseline_ptr, _ = _pointer(baseline, "baseline", "float32", (h, w, 3))
    masks_ptr, (b, _, _) = _pointer(masks, "masks", "float32", (None, h, w))
    out_ptr, _ = _pointer(out, "out", "float32", (b, 3, h, w) if layout == "NCHW" else (b, h, w, 3))
    _core.cuda_perturb(image_ptr, baseline_ptr, masks_ptr, b, h, w, [float(g) for g in gain],
                       [float(v) for v in bias], bgr, layout == "NCHW", out_ptr, 0)


def accumulate(scores, masks, sums, counts, complement: bool = False) -> None:
    """sums[t] += sum_b scores[b, t] * w_b, counts += sum_b w_b (w_b = masks[b] or 1 - masks[b]),
    as ``_core.accumulate``: scores (B, T) float32, masks (B, H, W) float32, sums (T, H, W) and
    counts (H, W) float64."""
    require_cuda()
    scores_ptr, (b, t) = _pointer(scores, "scores", "float32", (None, None))
    masks_ptr, (_, h, w) = _pointer(masks, "masks", "float32", (b, None, None))
    sums_ptr, _ = _pointer(sums, "sums", "float64", (t, h, w))
    counts_ptr, _ = _pointer(counts, "counts", "float64", (h, w))
    _core.cuda_accumulate(scores_ptr, masks_ptr, b, t, h * w, complement, sums_ptr, counts_ptr, 0)
