#include "onnxplain/causal.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "onnxplain/parallel.hpp"
#include "onnxplain/rng.hpp"

namespace onnxplain {

bool splittable(const int32_t box[4], int64_t min_area) {
    const int64_t h = box[2] - box[0], w = box[3] - box[1];
    return h >= 2 && w >= 2 && h * w >= min_area;
}

void split_boxes(uint64_t seed, const int64_t* streams, const int64_t* counters, const int32_t* boxes,
                 int64_t n, int64_t min_area, int32_t* children) {
    for (int64_t i = 0; i < n; ++i) {
        const int32_t* b = boxes + 4 * i;
        int32_t* c = children + 16 * i;
        if (!splittable(b, min_area)) {
            for (int j = 0; j < 4; ++j) std::copy(b, b + 4, c + 4 * j);
            continue;
        }
        const auto stream = static_cast<uint64_t>(streams[i]);
        const auto counter = static_cast<uint64_t>(counters[i]);
        const int32_t h = b[2] - b[0], w = b[3] - b[1];
        const int32_t sy = b[0] + 1 + std::min(h - 2, static_cast<int32_t>(uniform01(seed, stream, counter) * (h - 1)));
        const int32_t sx = b[1] + 1 + std::min(w - 2, static_cast<int32_t>(uniform01(seed, stream, counter + 1) * (w - 1)));
        const int32_t quads[4][4] = {{b[0], b[1], sy, sx}, {b[0], sx, sy, b[3]}, {sy, b[1], b[2], sx}, {sy, sx, b[2], b[3]}};
        for (int j = 0; j < 4; ++j) std::copy(quads[j], quads[j] + 4, c + 4 * j);
    }
}

void box_masks(const int32_t* boxes, const int64_t* groups, int64_t n_boxes, int64_t count,
               int64_t height, int64_t width, float* out, int threads) {
    // offsets[g] .. offsets[g + 1]: the boxes of mask g
    std::vector<int64_t> offsets(static_cast<size_t>(count + 1));
    for (int64_t g = 0; g <= count; ++g)
        offsets[static_cast<size_t>(g)] = std::lower_bound(groups, groups + n_boxes, g) - groups;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t g = begin; g < end; ++g) {
            float* m = out + g * height * width;
            std::fill(m, m + height * width, 0.0f);
            for (int64_t k = offsets[static_cast<size_t>(g)]; k < offsets[static_cast<size_t>(g + 1)]; ++k) {
                const int32_t* b = boxes + 4 * k;
                const int64_t y0 = std::max<int64_t>(b[0], 0), y1 = std::min<int64_t>(b[2], height);
                const int64_t x0 = std::max<int64_t>(b[1], 0), x1 = std::min<int64_t>(b[3], width);
                for (int64_t y = y0; y < y1; ++y)
                    if (x0 < x1) std::fill(m + y * width + x0, m + y * width + x1, 1.0f);
            }
        }
    });
}

void credit_boxes(const int32_t* boxes, const double* values, int64_t n_boxes, int64_t height,
                  int64_t width, double* map) {
    for (int64_t k = 0; k < n_boxes; ++k) {
        const int32_t* b = boxes + 4 * k;
        const int64_t y0 = std::max<int64_t>(b[0], 0), y1 = std::min<int64_t>(b[2], height);
        const int64_t x0 = std::max<int64_t>(b[1], 0), x1 = std::min<int64_t>(b[3], width);
        for (int64_t y = y0; y < y1; ++y)
            for (int64_t x = x0; x < x1; ++x) map[y * width + x] += values[k];
    }
}

void sibling_responsibility(const uint8_t* passes, const int64_t* areas, int64_t n,
                            double* responsibility, int32_t* chosen) {
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t* p = passes + 16 * i;
        const int64_t* a = areas + 4 * i;
        for (int j = 0; j < 4; ++j) {
            double best = 0.0;
            for (int s = 1; s < 16; ++s) {
                if (!(s & (1 << j)) || !p[s] || p[s & ~(1 << j)]) continue;
                const int hidden = 4 - __builtin_popcount(static_cast<unsigned>(s));
                best = std::max(best, 1.0 / (1.0 + hidden));
            }
            responsibility[4 * i + j] = best;
        }
        int32_t pick = 15;
        int64_t pick_area = 0;
        for (int s = 1; s < 15; ++s) {
            if (!p[s]) continue;
            int64_t area = 0;
            for (int j = 0; j < 4; ++j)
                if (s & (1 << j)) area += a[j];
            const bool better = pick == 15 || area < pick_area ||
                                (area == pick_area && __builtin_popcount(static_cast<unsigned>(s)) <
                                                          __builtin_popcount(static_cast<unsigned>(pick)));
            if (better) {
                pick = s;
                pick_area = area;
            }
        }
        chosen[i] = pick;
    }
}

void rank_masks(const int32_t* rank, const int64_t* cuts, int64_t count, int64_t pixels, float* out,
                int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
            float* m = out + k * pixels;
            const int64_t cut = cuts[k];
            for (int64_t p = 0; p < pixels; ++p) m[p] = rank[p] < cut ? 1.0f : 0.0f;
        }
    });
}

void disc_masks(const float* centres, const float* radii, const uint8_t* allowed, int64_t count,
                int64_t height, int64_t width, float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
            float* m = out + k * height * width;
            const float cy = centres[2 * k], cx = centres[2 * k + 1], r2 = radii[k] * radii[k];
            for (int64_t y = 0; y < height; ++y) {
                const float dy = static_cast<float>(y) + 0.5f - cy;
                for (int64_t x = 0; x < width; ++x) {
                    const float dx = static_cast<float>(x) + 0.5f - cx;
                    m[y * width + x] = (dy * dy + dx * dx <= r2 && allowed[y * width + x]) ? 1.0f : 0.0f;
                }
            }
        }
    });
}

void spotlight_centres(uint64_t seed, int64_t first, int64_t count, const float* responsibility,
                       const uint8_t* allowed, int64_t height, int64_t width, float radius,
                       int64_t steps, float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
            const auto stream = static_cast<uint64_t>(first + k);
            float cy = uniform01(seed, stream, 0) * static_cast<float>(height);
            float cx = uniform01(seed, stream, 1) * static_cast<float>(width);
            for (int64_t step = 0; step < steps; ++step) {
                const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cy - radius)));
                const int64_t y1 = std::min<int64_t>(height, static_cast<int64_t>(std::ceil(cy + radius)) + 1);
                const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cx - radius)));
                const int64_t x1 = std::min<int64_t>(width, static_cast<int64_t>(std::ceil(cx + radius)) + 1);
                double sw = 0.0, sy = 0.0, sx = 0.0;
                for (int64_t y = y0; y < y1; ++y) {
                    const float dy = static_cast<float>(y) + 0.5f - cy;
                    for (int64_t x = x0; x < x1; ++x) {
                        const float dx = static_cast<float>(x) + 0.5f - cx;
                        const int64_t p = y * width + x;
                        if (dy * dy + dx * dx > radius * radius || !allowed[p]) continue;
                        const double wgt = std::max(0.0f, responsibility[p]);
                        sw += wgt;
                        sy += wgt * (static_cast<double>(y) + 0.5);
                        sx += wgt * (static_cast<double>(x) + 0.5);
                    }
                }
                if (sw <= 0.0) break;
                cy = static_cast<float>(sy / sw);
                cx = static_cast<float>(sx / sw);
            }
            out[2 * k] = cy;
            out[2 * k + 1] = cx;
        }
    });
}

int64_t mask_parts(const uint8_t* mask, int64_t height, int64_t width, int64_t cell, int32_t* labels) {
    std::fill(labels, labels + height * width, 0);
    std::vector<int64_t> stack;
    int32_t next = 0;
    for (int64_t start = 0; start < height * width; ++start) {
        if (!mask[start] || labels[start]) continue;
        labels[start] = ++next;
        const int64_t ty = (start / width) / cell, tx = (start % width) / cell;
        stack.assign(1, start);
        while (!stack.empty()) {
            const int64_t p = stack.back();
            stack.pop_back();
            const int64_t y = p / width, x = p % width;
            const int64_t ny[4] = {y - 1, y + 1, y, y}, nx[4] = {x, x, x - 1, x + 1};
            for (int d = 0; d < 4; ++d) {
                if (ny[d] < 0 || ny[d] >= height || nx[d] < 0 || nx[d] >= width) continue;
                if (ny[d] / cell != ty || nx[d] / cell != tx) continue;
                const int64_t q = ny[d] * width + nx[d];
                if (mask[q] && !labels[q]) {
                    labels[q] = next;
                    stack.push_back(q);
                }
            }
        }
    }
    return next;
}

void drop_masks(const int32_t* labels, const uint8_t* drop, int64_t count, int64_t parts, int64_t pixels,
                float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
            const uint8_t* d = drop + k * (parts + 1);
            float* m = out + k * pixels;
            for (int64_t p = 0; p < pixels; ++p) m[p] = (labels[p] > 0 && !d[labels[p]]) ? 1.0f : 0.0f;
        }
    });
}

}  // namespace onnxplain
