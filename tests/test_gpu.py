"""The CUDA kernels (onnxplain.gpu) against the CPU kernels, bit for bit.

Tests marked `gpu` need a CUDA device and CuPy (or torch with CUDA) and skip without them; the
others check, on any machine, that the module imports without a driver and that asking for the
GPU where there is none is a clear error.
"""
from __future__ import annotations

import numpy as np
import pytest

from onnxplain import _core, gpu
from onnxplain.errors import OnnxplainError


def _device_arrays():
    """(to_device, to_host) for CuPy, else torch; None when neither has a usable GPU."""
    if not gpu.cuda_available():
        return None
    try:
        import cupy

        return cupy.asarray, cupy.asnumpy
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return (lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda()), (lambda t: t.cpu().numpy())
    except ImportError:
        pass
    return None


ARRAYS = _device_arrays()
needs_gpu = pytest.mark.skipif(ARRAYS is None, reason="needs a CUDA device and CuPy or torch with CUDA")


def test_module_imports_without_a_driver_and_reports_devices():
    count = _core.cuda_device_count()
    assert isinstance(count, int) and count >= 0
    assert gpu.cuda_available() == (bool(_core.cuda_built) and count > 0)


@pytest.mark.skipif(gpu.cuda_available(), reason="a CUDA device is present")
def test_no_device_is_a_clear_error():
    with pytest.raises(OnnxplainError, match="without CUDA kernels|no CUDA device"):
        gpu.require_cuda()
    with pytest.raises(OnnxplainError, match="without CUDA kernels|no CUDA device"):
        gpu.rise_masks(0, 0, 4, 0.5, np.zeros((1, 8, 8), np.float32))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("height,width,grid,p_keep,first", [(224, 224, 7, 0.5, 0), (37, 53, 5, 0.3, 1000), (9, 9, 9, 0.9, 7)])
def test_rise_masks_match_cpu(height, width, grid, p_keep, first):
    to_device, to_host = ARRAYS
    out = to_device(np.full((6, height, width), -1, np.float32))
    gpu.rise_masks(123, first, grid, p_keep, out)
    np.testing.assert_array_equal(to_host(out), _core.rise_masks(123, first, 6, height, width, grid, p_keep))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("height,width,window,stride,first,count", [(64, 64, 8, 4, 0, 20), (31, 45, 7, 5, 3, 30), (10, 10, 10, 3, 0, 1)])
def test_occlusion_masks_match_cpu(height, width, window, stride, first, count):
    to_device, to_host = ARRAYS
    out = to_device(np.full((count, height, width), -1, np.float32))
    gpu.occlusion_masks(height, width, window, stride, first, out)
    np.testing.assert_array_equal(to_host(out), _core.occlusion_masks(height, width, window, stride, first, count))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("layout,bgr", [("NCHW", False), ("NHWC", True)])
def test_perturb_matches_cpu(layout, bgr):
    to_device, to_host = ARRAYS
    rng = np.random.default_rng(0)
    h, w, b = 33, 47, 5
    image = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    baseline = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    masks = rng.uniform(0, 1, (b, h, w)).astype(np.float32)
    gain, bias = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-2.1, -2.0, -1.8]
    shape = (b, 3, h, w) if layout == "NCHW" else (b, h, w, 3)
    expected = np.empty(shape, np.float32)
    pre = _core.Preprocessor((h, w, 3), gain, bias, [2, 1, 0] if bgr else [0, 1, 2], layout == "NCHW")
    pre.prepare(image, baseline).blend(masks, expected)
    out = to_device(np.zeros(shape, np.float32))
    gpu.perturb(to_device(image), to_device(baseline), to_device(masks), out, gain, bias, bgr, layout)
    np.testing.assert_array_equal(to_host(out), expected)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("complement", [False, True])
def test_accumulate_matches_cpu(complement):
    to_device, to_host = ARRAYS
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, (9, 3)).astype(np.float32)
    masks = rng.uniform(0, 1, (9, 20, 30)).astype(np.float32)
    sums, counts = rng.uniform(0, 1, (3, 20, 30)), rng.uniform(0, 1, (20, 30))
    gpu_sums, gpu_counts = to_device(sums.copy()), to_device(counts.copy())
    _core.accumulate(scores, masks, sums, counts, complement)
    gpu.accumulate(to_device(scores), to_device(masks), gpu_sums, gpu_counts, complement)
    np.testing.assert_array_equal(to_host(gpu_sums), sums)
    np.testing.assert_array_equal(to_host(gpu_counts), counts)


@pytest.mark.gpu
@needs_gpu
def test_bad_gpu_arrays_are_clear_errors():
    to_device, _ = ARRAYS
    with pytest.raises(OnnxplainError, match="must be a GPU array"):
        gpu.rise_masks(0, 0, 4, 0.5, np.zeros((1, 8, 8), np.float32))
    with pytest.raises(OnnxplainError, match="dtype float32"):
        gpu.rise_masks(0, 0, 4, 0.5, to_device(np.zeros((1, 8, 8), np.float64)))
    with pytest.raises(OnnxplainError, match="shape"):
        gpu.occlusion_masks(8, 8, 4, 2, 0, to_device(np.zeros((1, 8, 9), np.float32)))
    with pytest.raises(OnnxplainError, match="C-contiguous"):
        gpu.rise_masks(0, 0, 4, 0.5, to_device(np.zeros((1, 8, 16), np.float32))[:, :, ::2])
