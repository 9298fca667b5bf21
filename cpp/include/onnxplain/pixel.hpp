// Per-element arithmetic shared by the CPU kernels (kernels.cpp) and the CUDA kernels
// (cuda/kernels.cu), so that both paths compute the same values from the same formulas and
// the CPU tests cover the logic. Everything here is a pure inline function.
#pragma once
#include <cstdint>

#include "onnxplain/rng.hpp"

namespace onnxplain {

/// One axis of RISE's bilinear upsampling: output index i (0 <= i < size) reads lattice nodes
/// lo and hi with weight w on hi. Node j sits at pixel centre (j + 0.5) * cell - 0.5 - shift,
/// clamped to the lattice [0, grid].
struct Tap {
    int64_t lo, hi;
    float w;
};

ONNXPLAIN_HD inline Tap rise_tap(int64_t i, int64_t cell, int64_t shift, int64_t grid) {
    float src = (static_cast<float>(i + shift) + 0.5f) / static_cast<float>(cell) - 0.5f;
    src = src < 0.0f ? 0.0f : (src > static_cast<float>(grid) ? static_cast<float>(grid) : src);
    const int64_t lo = static_cast<int64_t>(src);  // src >= 0: truncation is floor
    const int64_t hi = lo + 1 < grid ? lo + 1 : grid;
    return Tap{lo, hi, src - static_cast<float>(lo)};
}

/// RISE lattice node k (row-major over (grid+1)^2) of perturbation `stream`: 1 or 0.
ONNXPLAIN_HD inline float rise_node(uint64_t seed, uint64_t stream, int64_t k, float p_keep) {
    return uniform01(seed, stream, static_cast<uint64_t>(k)) < p_keep ? 1.0f : 0.0f;
}

/// RISE random shift in [0, cell) of perturbation `stream`; axis 0 = y, 1 = x (draws
/// (grid+1)^2 and (grid+1)^2 + 1).
ONNXPLAIN_HD inline int64_t rise_shift(uint64_t seed, uint64_t stream, int64_t grid, int64_t cell, int axis) {
    const uint64_t counter = static_cast<uint64_t>((grid + 1) * (grid + 1) + axis);
    return static_cast<int64_t>(uniform01(seed, stream, counter) * static_cast<float>(cell));
}

/// Linear interpolation a + w * (b - a).
ONNXPLAIN_HD inline float lerp(float a, float b, float w) { return a + w * (b - a); }

/// Bilinear interpolation of the four lattice values around a pixel: along x, then along y (the
/// CPU kernel computes the same two steps separably).
ONNXPLAIN_HD inline float bilinear(float n00, float n01, float n10, float n11, float wy, float wx) {
    return lerp(lerp(n00, n01, wx), lerp(n10, n11, wx), wy);
}

/// The perturbation blend of preprocessed values: w * x + (1 - w) * z.
ONNXPLAIN_HD inline float blend(float w, float x, float z) { return w * x + (1.0f - w) * z; }

/// Weight of a mask value in the score accumulation: m, or 1 - m for complement.
ONNXPLAIN_HD inline double accumulation_weight(float m, bool complement) {
    return complement ? 1.0 - static_cast<double>(m) : static_cast<double>(m);
}

}  // namespace onnxplain
