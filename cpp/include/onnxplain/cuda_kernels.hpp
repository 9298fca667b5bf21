// CUDA versions of the core kernels (compiled only when CMake finds a CUDA toolkit; see
// kernels.hpp for the CPU versions and the exact semantics, which these match element for
// element through the shared formulas in pixel.hpp). All pointers are device pointers to dense
// row-major arrays; `stream` is a cudaStream_t (0 = the default stream). Launches are
// asynchronous on that stream; errors of the launch are thrown as std::runtime_error.
#pragma once
#include <cstdint>

namespace onnxplain::cuda {

/// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();

/// Same as onnxplain::occlusion_masks, into device memory.
void occlusion_masks(int64_t height, int64_t width, int64_t window, int64_t stride, int64_t first,
                     int64_t count, float* out, void* stream);

/// Same as onnxplain::rise_masks, into device memory.
void rise_masks(uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width, int64_t grid,
                float p_keep, float* out, void* stream);

/// Same as onnxplain::perturb: image, baseline H x W x 3 RGB 0..255 on the device.
void perturb(const float* image, const float* baseline, const float* masks, int64_t batch, int64_t height,
             int64_t width, const float gain[3], const float bias[3], bool bgr, bool nchw, float* out,
             void* stream);

/// Same as onnxplain::accumulate (each pixel adds b in increasing order, so results equal the
/// CPU's bit for bit).
void accumulate(const float* scores, const float* masks, int64_t batch, int64_t targets, int64_t pixels,
                bool complement, double* sums, double* counts, void* stream);

}  // namespace onnxplain::cuda
