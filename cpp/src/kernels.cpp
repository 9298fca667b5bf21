#include "onnxplain/kernels.hpp"

#include <algorithm>
#include <vector>

#include "onnxplain/parallel.hpp"
#include "onnxplain/pixel.hpp"

namespace onnxplain {

int64_t window_positions(int64_t size, int64_t window, int64_t stride, int64_t* out) {
    const int64_t span = size - window;  // >= 0: the last offset
    const int64_t n = span / stride + 1 + (span % stride != 0 ? 1 : 0);  // counted, not walked: any size is O(1)
    if (out) {
        for (int64_t i = 0; i + 1 < n; ++i) out[i] = i * stride;  // i * stride < span: no overflow
        out[n - 1] = span;
    }
    return n;
}

void occlusion_masks(int64_t height, int64_t width, int64_t window, int64_t stride,
                     int64_t first, int64_t count, float* out, int threads) {
    std::vector<int64_t> ys(static_cast<size_t>(window_positions(height, window, stride, nullptr)));
    std::vector<int64_t> xs(static_cast<size_t>(window_positions(width, window, stride, nullptr)));
    window_positions(height, window, stride, ys.data());
    window_positions(width, window, stride, xs.data());
    const int64_t nx = static_cast<int64_t>(xs.size());
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            const int64_t k = first + b;
            const int64_t y0 = ys[static_cast<size_t>(k / nx)], x0 = xs[static_cast<size_t>(k % nx)];
            float* m = out + b * height * width;
            std::fill(m, m + height * width, 1.0f);
            for (int64_t y = y0; y < y0 + window; ++y)
                std::fill(m + y * width + x0, m + y * width + x0 + window, 0.0f);
        }
    }, grain_for(height * width));
}

namespace {

std::vector<Tap> taps(int64_t size, int64_t cell, int64_t shift, int64_t grid) {
    std::vector<Tap> t(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) t[static_cast<size_t>(i)] = rise_tap(i, cell, shift, grid);
    return t;
}

}  // namespace

void rise_masks(uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width,
                int64_t grid, float p_keep, float* out, int threads) {
    const int64_t cell_h = (height + grid - 1) / grid, cell_w = (width + grid - 1) / grid;
    const int64_t nodes = (grid + 1) * (grid + 1);
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        std::vector<float> node(static_cast<size_t>(nodes));
        std::vector<float> rows(static_cast<size_t>((grid + 1) * width));  // lattice rows along x
        for (int64_t b = begin; b < end; ++b) {
            const uint64_t stream = static_cast<uint64_t>(first + b);
            for (int64_t k = 0; k < nodes; ++k) node[static_cast<size_t>(k)] = rise_node(seed, stream, k, p_keep);
            const auto ty = taps(height, cell_h, rise_shift(seed, stream, grid, cell_h, 0), grid);
            const auto tx = taps(width, cell_w, rise_shift(seed, stream, grid, cell_w, 1), grid);
            // Separable: each lattice row interpolated along x once, then each output row is a
            // lerp of two of them (`bilinear`'s two steps, the same arithmetic).
            for (int64_t j = 0; j <= grid; ++j) {
                const float* n = node.data() + j * (grid + 1);
                float* r = rows.data() + j * width;
                for (int64_t x = 0; x < width; ++x) {
                    const Tap c = tx[static_cast<size_t>(x)];
                    r[x] = lerp(n[c.lo], n[c.hi], c.w);
                }
            }
            float* m = out + b * height * width;
            for (int64_t y = 0; y < height; ++y) {
                const Tap a = ty[static_cast<size_t>(y)];
                const float* top = rows.data() + a.lo * width;
                const float* bottom = rows.data() + a.hi * width;
                float* row = m + y * width;
                for (int64_t x = 0; x < width; ++x) row[x] = lerp(top[x], bottom[x], a.w);
            }
        }
    }, grain_for(height * width));
}

void accumulate(const float* scores, const float* masks, int64_t batch, int64_t targets,
                int64_t pixels, bool complement, double* sums, double* counts, int threads) {
    // Parallel over pixel blocks; each pixel sums b in increasing order.
    const int64_t block = 1024;
    parallel_for((pixels + block - 1) / block, threads, [&](int64_t begin, int64_t end) {
        for (int64_t blk = begin; blk < end; ++blk) {
            const int64_t p0 = blk * block, p1 = std::min(pixels, p0 + block);
            for (int64_t b = 0; b < batch; ++b) {
                const float* m = masks + b * pixels;
                for (int64_t p = p0; p < p1; ++p) counts[p] += accumulation_weight(m[p], complement);
                for (int64_t t = 0; t < targets; ++t) {
                    const double s = static_cast<double>(scores[b * targets + t]);
                    double* sum = sums + t * pixels;
                    for (int64_t p = p0; p < p1; ++p) sum[p] += s * accumulation_weight(m[p], complement);
                }
            }
        }
    }, grain_for(batch * (targets + 1) * block));
}

}  // namespace onnxplain
