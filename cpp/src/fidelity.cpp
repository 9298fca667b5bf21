#include "onnxplain/fidelity.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "onnxplain/parallel.hpp"
#include "onnxplain/rng.hpp"

namespace onnxplain {

int64_t feature_count(int64_t height, int64_t width, int64_t patch) {
    int64_t count = 0;  // ceil(height / patch) * ceil(width / patch), written so that it cannot overflow
    return __builtin_mul_overflow((height - 1) / patch + 1, (width - 1) / patch + 1, &count) ? -1 : count;
}

void rank_labels(const float* map, const int32_t* labels, int64_t positions, int64_t features, uint64_t seed,
                 int32_t* rank) {
    const auto n = static_cast<size_t>(features);
    std::vector<double> score(n, 0.0), area(n, 0.0);
    for (int64_t p = 0; p < positions; ++p) {
        const auto f = static_cast<size_t>(labels[p]);
        score[f] += static_cast<double>(map[p]);
        area[f] += 1.0;
    }
    std::vector<float> tie(n);
    for (size_t f = 0; f < n; ++f) {
        score[f] /= area[f];
        tie[f] = uniform01(seed, kTieStream, static_cast<uint64_t>(f));
    }
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), int64_t{0});
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const auto ia = static_cast<size_t>(a), ib = static_cast<size_t>(b);
        if (score[ia] != score[ib]) return score[ia] > score[ib];
        if (tie[ia] != tie[ib]) return tie[ia] < tie[ib];
        return a < b;
    });
    std::vector<int32_t> feature_rank(n);
    for (size_t r = 0; r < n; ++r) feature_rank[static_cast<size_t>(order[r])] = static_cast<int32_t>(r);
    for (int64_t p = 0; p < positions; ++p) rank[p] = feature_rank[static_cast<size_t>(labels[p])];
}

void rank_features(const float* map, int64_t height, int64_t width, int64_t patch, uint64_t seed,
                   int32_t* rank) {
    const int64_t fw = (width + patch - 1) / patch;
    std::vector<int32_t> labels(static_cast<size_t>(height * width));
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x)
            labels[static_cast<size_t>(y * width + x)] = static_cast<int32_t>((y / patch) * fw + x / patch);
    rank_labels(map, labels.data(), height * width, feature_count(height, width, patch), seed, rank);
}

void ranked_masks(const int32_t* rank, int64_t pixels, const int64_t* removed, int64_t batch,
                  bool insert, float* out, int threads) {
    const float hit = insert ? 1.0f : 0.0f, miss = insert ? 0.0f : 1.0f;
    const int64_t block = 4096;
    const int64_t blocks = (pixels + block - 1) / block;
    parallel_for(batch * blocks, threads, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
            const int64_t b = task / blocks, p0 = (task % blocks) * block, p1 = std::min(pixels, p0 + block);
            const int64_t k = removed[b];
            float* m = out + b * pixels;
            for (int64_t p = p0; p < p1; ++p) m[p] = rank[p] < k ? hit : miss;
        }
    });
}

void random_map(uint64_t seed, int64_t pixels, float* out) {
    for (int64_t p = 0; p < pixels; ++p) out[p] = uniform01(seed, kRandomMapStream, static_cast<uint64_t>(p));
}

void gaussian(uint64_t seed, uint64_t stream, int64_t count, float* out, int threads) {
    constexpr double two_pi = 6.283185307179586;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const double u1 = 1.0 - static_cast<double>(uniform01(seed, stream, static_cast<uint64_t>(2 * i)));  // (0, 1]
            const double u2 = static_cast<double>(uniform01(seed, stream, static_cast<uint64_t>(2 * i + 1)));
            out[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
        }
    });
}

int64_t removed_count(const float* mask, int64_t pixels) {
    int64_t n = 0;
    for (int64_t p = 0; p < pixels; ++p) n += mask[p] < 0.5f ? 1 : 0;
    return n;
}

int64_t imputation_system(const float* mask, const float* image, int64_t height, int64_t width,
                          int64_t channels, int64_t* variable, int64_t* rows, int64_t* cols, double* values, double* rhs) {
    constexpr int offsets[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
    constexpr double direct = 1.0 / 6.0, diagonal = 1.0 / 12.0;
    const int64_t pixels = height * width;
    int64_t unknowns = 0;
    for (int64_t p = 0; p < pixels; ++p) variable[p] = mask[p] < 0.5f ? unknowns++ : -1;
    int64_t nnz = 0;
    for (int64_t p = 0; p < pixels; ++p) {
        const int64_t k = variable[p];
        if (k < 0) continue;
        const int64_t y = p / width, x = p % width;
        double present = 0.0;
        double* b = rhs + channels * k;
        std::fill(b, b + channels, 0.0);
        for (const auto& o : offsets) {
            const int64_t ny = y + o[0], nx = x + o[1];
            if (ny < 0 || ny >= height || nx < 0 || nx >= width) continue;
            const double w = (o[0] == 0 || o[1] == 0) ? direct : diagonal;
            present += w;
            const int64_t q = ny * width + nx;
            if (variable[q] >= 0) {
                rows[nnz] = k;
                cols[nnz] = variable[q];
                values[nnz++] = w;
            } else {
                for (int64_t c = 0; c < channels; ++c) b[c] -= w * static_cast<double>(image[channels * q + c]);
            }
        }
        rows[nnz] = k;
        cols[nnz] = k;
        values[nnz++] = -present;
    }
    return nnz;
}

}  // namespace onnxplain
