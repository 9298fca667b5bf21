#include "onnxplain/infomaps.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "onnxplain/parallel.hpp"
#include "onnxplain/rng.hpp"

namespace onnxplain {

float normal01(uint64_t seed, uint64_t stream, uint64_t index) {
    const uint64_t pair = index & ~uint64_t{1};
    const double u1 = 1.0 - static_cast<double>(uniform01(seed, stream, pair));  // (0, 1]
    const double u2 = static_cast<double>(uniform01(seed, stream, pair + 1));
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    return static_cast<float>((index & 1) ? r * std::sin(angle) : r * std::cos(angle));
}

namespace {

inline float clip255(float v) { return std::min(255.0f, std::max(0.0f, v)); }

}  // namespace

void gaussian_patch_samples(const float* image, int64_t height, int64_t width, int64_t patch,
                            int64_t frame, const int64_t* ys, const int64_t* xs,
                            const int64_t* configs, const uint64_t* streams, int64_t count,
                            uint64_t seed, const float* patch_mean, const float* window_mean,
                            const float* regress, const float* chol, float reference_spread,
                            float* out, int threads) {
    const int64_t side = patch + 2 * frame, dims = 3 * side * side, p = 3 * patch * patch;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        std::vector<float> centred(static_cast<size_t>(dims)), mean(static_cast<size_t>(p)),
            noise(static_cast<size_t>(p)), z(static_cast<size_t>(p));
        double scale = 1.0;
        for (int64_t b = begin; b < end; ++b) {
            const bool same = b > begin && ys[b] == ys[b - 1] && xs[b] == xs[b - 1] && configs[b] == configs[b - 1];
            if (!same) {  // conditional mean and noise scale of this position
                const int64_t y0 = ys[b] - frame, x0 = xs[b] - frame;
                double sum[3] = {0, 0, 0}, sum2[3] = {0, 0, 0};
                int64_t seen = 0;
                for (int64_t wy = 0; wy < side; ++wy)
                    for (int64_t wx = 0; wx < side; ++wx) {
                        const int64_t y = y0 + wy, x = x0 + wx;
                        const bool inside = y >= 0 && y < height && x >= 0 && x < width;
                        const bool in_patch = wy >= frame && wy < frame + patch && wx >= frame && wx < frame + patch;
                        if (inside && !in_patch) ++seen;
                        for (int64_t c = 0; c < 3; ++c) {
                            const int64_t d = (wy * side + wx) * 3 + c;
                            const float v = inside ? image[(y * width + x) * 3 + c] : 0.0f;
                            centred[static_cast<size_t>(d)] = inside ? v - window_mean[d] : 0.0f;
                            if (inside && !in_patch) {
                                sum[c] += v;
                                sum2[c] += static_cast<double>(v) * v;
                            }
                        }
                    }
                scale = 1.0;
                if (reference_spread > 0.0f && seen > 0) {
                    double spread = 0.0;
                    for (int c = 0; c < 3; ++c) {
                        const double m = sum[c] / static_cast<double>(seen);
                        spread += std::max(0.0, sum2[c] / static_cast<double>(seen) - m * m) / 3.0;
                    }
                    scale = std::sqrt(spread / reference_spread);
                }
                const float* a = regress + configs[b] * dims * p;
                std::copy(patch_mean, patch_mean + p, mean.begin());
                for (int64_t d = 0; d < dims; ++d) {  // axpy form: vectorises, fixed order
                    const float cd = centred[static_cast<size_t>(d)];
                    if (cd == 0.0f) continue;
                    const float* row = a + d * p;
                    for (int64_t i = 0; i < p; ++i) mean[static_cast<size_t>(i)] += row[i] * cd;
                }
            }
            const float* u = chol + configs[b] * p * p;
            for (int64_t j = 0; j < p; ++j) z[static_cast<size_t>(j)] = normal01(seed, streams[b], static_cast<uint64_t>(j));
            std::fill(noise.begin(), noise.end(), 0.0f);
            for (int64_t j = 0; j < p; ++j) {
                const float zj = z[static_cast<size_t>(j)];
                const float* row = u + j * p;
                for (int64_t i = j; i < p; ++i) noise[static_cast<size_t>(i)] += row[i] * zj;
            }
            float* o = out + b * p;
            const float s = static_cast<float>(scale);
            for (int64_t i = 0; i < p; ++i) o[i] = clip255(mean[static_cast<size_t>(i)] + s * noise[static_cast<size_t>(i)]);
        }
    });
}

void bank_patch_samples(const float* bank, int64_t images, int64_t height, int64_t width,
                        int64_t patch, const int64_t* ys, const int64_t* xs,
                        const uint64_t* streams, int64_t count, uint64_t seed, float sigma,
                        float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            int64_t r = static_cast<int64_t>(uniform01(seed, streams[b], 0) * static_cast<float>(images));
            r = std::min(r, images - 1);
            const float* src = bank + r * height * width * 3;
            float* o = out + b * patch * patch * 3;
            for (int64_t y = 0; y < patch; ++y)
                std::memcpy(o + y * patch * 3, src + ((ys[b] + y) * width + xs[b]) * 3,
                            static_cast<size_t>(patch * 3) * sizeof(float));
        }
    });
    if (sigma > 0.0f) noisy_patches(out, patch, streams, count, seed, sigma, threads);
}

void noisy_patches(float* patches, int64_t patch, const uint64_t* streams, int64_t count,
                   uint64_t seed, float sigma, int threads) {
    const int64_t p = 3 * patch * patch;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            float* o = patches + b * p;
            for (int64_t j = 0; j < p; ++j)
                o[j] = clip255(o[j] + sigma * normal01(seed, streams[b], static_cast<uint64_t>(2 + j)));
        }
    });
}

void categorical_patches(const float* probabilities, const int64_t* rows, int64_t values,
                         const uint64_t* streams, int64_t count, uint64_t seed, float* out,
                         int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            const float* row = probabilities + rows[b] * values * 256;
            for (int64_t j = 0; j < values; ++j) {
                const float* p = row + j * 256;
                const double u = uniform01(seed, streams[b], static_cast<uint64_t>(j));
                double cdf = 0.0;
                int level = 255;
                for (int v = 0; v < 256; ++v) {
                    cdf += p[v];
                    if (u < cdf) {
                        level = v;
                        break;
                    }
                }
                out[b * values + j] = static_cast<float>(level);
            }
        }
    });
}

void paste_patches(const float* image, int64_t height, int64_t width, const float* samples,
                   int64_t patch, const int64_t* ys, const int64_t* xs, int64_t count,
                   const float gain[3], const float bias[3], bool bgr, bool nchw, float* out,
                   int threads) {
    const int64_t pixels = height * width;
    std::vector<float> clean(static_cast<size_t>(3 * pixels));  // P(image) in the output layout
    for (int64_t q = 0; q < pixels; ++q)
        for (int c = 0; c < 3; ++c)
            clean[static_cast<size_t>(nchw ? c * pixels + q : 3 * q + c)] =
                image[3 * q + (bgr ? 2 - c : c)] * gain[c] + bias[c];
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            float* o = out + b * 3 * pixels;
            std::memcpy(o, clean.data(), static_cast<size_t>(3 * pixels) * sizeof(float));
            const float* s = samples + b * patch * patch * 3;
            for (int64_t y = 0; y < patch; ++y)
                for (int64_t x = 0; x < patch; ++x) {
                    const int64_t q = (ys[b] + y) * width + xs[b] + x;
                    const float* v = s + (y * patch + x) * 3;
                    for (int c = 0; c < 3; ++c) {
                        const float value = v[bgr ? 2 - c : c] * gain[c] + bias[c];
                        o[nchw ? c * pixels + q : 3 * q + c] = value;
                    }
                }
        }
    });
}

}  // namespace onnxplain
