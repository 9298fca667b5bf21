// The model-independent kernels of onnxplain. All arrays are dense, row-major, float32
// unless stated; the caller (the binding layer) validates shapes. Every kernel writes
// each output element from exactly one thread, so results never depend on `threads`
// (0 = all hardware threads).
#pragma once
#include <cstdint>

namespace onnxplain {

// ---- masks: value 1 keeps the image pixel, 0 takes the baseline -------------------

/// Top-left offsets of a sliding window of length `window` with `stride` along an axis of
/// length `size`: 0, stride, ... and a last one at size - window so every pixel is covered.
int64_t window_positions(int64_t size, int64_t window, int64_t stride, int64_t* out /*nullable*/);

/// Occlusion masks for windows first .. first+count-1 in row-major window order:
/// out[b] (height x width) is 0 inside window b and 1 elsewhere.
void occlusion_masks(int64_t height, int64_t width, int64_t window, int64_t stride,
                     int64_t first, int64_t count, float* out, int threads);

/// RISE masks for perturbations first .. first+count-1. Each draws a (grid+1) x (grid+1)
/// lattice of binary nodes (1 with probability p_keep) spaced one cell apart, cells of
/// ceil(height/grid) x ceil(width/grid) pixels, interpolates it bilinearly (node j at pixel
/// centre (j + 0.5) * cell - 0.5, clamped at the edges) and crops height x width at a random
/// shift in [0, cell). Draws: counter k < (grid+1)^2 decides node k (row-major), counters
/// (grid+1)^2 and (grid+1)^2 + 1 the y and x shift.
void rise_masks(uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width,
                int64_t grid, float p_keep, float* out, int threads);

// ---- score accumulation -------------------------------------------------------------

/// For each target t and pixel p: sums[t][p] += sum_b scores[b][t] * w_b[p] and
/// counts[p] += sum_b w_b[p], with w_b = masks[b] (or 1 - masks[b] when complement),
/// adding b in increasing order. scores: batch x targets; sums: targets x pixels, counts:
/// pixels, both float64 and updated in place.
void accumulate(const float* scores, const float* masks, int64_t batch, int64_t targets,
                int64_t pixels, bool complement, double* sums, double* counts, int threads);

}  // namespace onnxplain
