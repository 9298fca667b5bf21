#include "onnxplain/sampling.hpp"

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

// The uniforms u[0..values) of one perturbation's draw (see categorical_patches): independent
// (coupling null), or per pixel Phi(A z) with A = coupling's C x C matrix of this row and z the
// pixel's C standard normals. e: scratch of C doubles.
void patch_uniforms(const float* coupling, int64_t channels, int64_t row, uint64_t seed, uint64_t stream,
                    int64_t values, double* u, std::vector<double>& e) {
    if (coupling == nullptr) {
        for (int64_t j = 0; j < values; ++j) u[j] = uniform01(seed, stream, static_cast<uint64_t>(j));
        return;
    }
    const float* a = coupling + row * channels * channels;
    for (int64_t first = 0; first < values; first += channels) {
        for (int64_t k = 0; k < channels; ++k)
            e[static_cast<size_t>(k)] = normal01(seed, stream, static_cast<uint64_t>(first + k));
        for (int64_t c = 0; c < channels; ++c) {
            double z = 0.0;
            for (int64_t k = 0; k < channels; ++k) z += a[c * channels + k] * e[static_cast<size_t>(k)];
            u[first + c] = 0.5 * std::erfc(-z * 0.7071067811865476);
        }
    }
}

}  // namespace

void gaussian_patch_samples(const float* image, int64_t height, int64_t width, int64_t channels,
                            int64_t patch, int64_t frame, const int64_t* ys, const int64_t* xs,
                            const int64_t* configs, const uint64_t* streams, int64_t count,
                            uint64_t seed, const float* patch_mean, const float* window_mean,
                            const float* regress, const float* chol, float reference_spread,
                            float* out, int threads) {
    const int64_t side = patch + 2 * frame, dims = channels * side * side, p = channels * patch * patch;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        std::vector<float> centred(static_cast<size_t>(dims)), mean(static_cast<size_t>(p)),
            noise(static_cast<size_t>(p)), z(static_cast<size_t>(p));
        std::vector<double> sum(static_cast<size_t>(channels)), sum2(static_cast<size_t>(channels));
        double scale = 1.0;
        for (int64_t b = begin; b < end; ++b) {
            const bool same = b > begin && ys[b] == ys[b - 1] && xs[b] == xs[b - 1] && configs[b] == configs[b - 1];
            if (!same) {  // conditional mean and noise scale of this position
                const int64_t y0 = ys[b] - frame, x0 = xs[b] - frame;
                std::fill(sum.begin(), sum.end(), 0.0);
                std::fill(sum2.begin(), sum2.end(), 0.0);
                int64_t seen = 0;
                for (int64_t wy = 0; wy < side; ++wy)
                    for (int64_t wx = 0; wx < side; ++wx) {
                        const int64_t y = y0 + wy, x = x0 + wx;
                        const bool inside = y >= 0 && y < height && x >= 0 && x < width;
                        const bool in_patch = wy >= frame && wy < frame + patch && wx >= frame && wx < frame + patch;
                        if (inside && !in_patch) ++seen;
                        for (int64_t c = 0; c < channels; ++c) {
                            const int64_t d = (wy * side + wx) * channels + c;
                            const float v = inside ? image[(y * width + x) * channels + c] : 0.0f;
                            centred[static_cast<size_t>(d)] = inside ? v - window_mean[d] : 0.0f;
                            if (inside && !in_patch) {
                                sum[static_cast<size_t>(c)] += v;
                                sum2[static_cast<size_t>(c)] += static_cast<double>(v) * v;
                            }
                        }
                    }
                scale = 1.0;
                if (reference_spread > 0.0f && seen > 0) {
                    double spread = 0.0;
                    for (size_t c = 0; c < sum.size(); ++c) {
                        const double m = sum[c] / static_cast<double>(seen);
                        spread += std::max(0.0, sum2[c] / static_cast<double>(seen) - m * m) / static_cast<double>(channels);
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

namespace {

/// In-place lower Cholesky factor of the n x n row-major matrix a (upper part left as is).
bool cholesky(std::vector<double>& a, int64_t n) {
    double mean_diag = 0.0;
    for (int64_t i = 0; i < n; ++i) mean_diag += a[static_cast<size_t>(i * n + i)] / static_cast<double>(n);
    const double jitter = 1e-9 * std::max(mean_diag, 1e-300);
    for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i * n + i)] += jitter;
    for (int64_t j = 0; j < n; ++j) {
        double* rj = a.data() + j * n;
        double d = rj[j];
        for (int64_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
        if (!(d > 0.0)) return false;
        d = std::sqrt(d);
        rj[j] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double* ri = a.data() + i * n;
            double v = ri[j];
            for (int64_t k = 0; k < j; ++k) v -= ri[k] * rj[k];
            ri[j] = v / d;
        }
    }
    return true;
}

}  // namespace

bool gaussian_conditionals(const double* cov, int64_t dims, const int64_t* patch_index,
                           int64_t patch_dims, const uint8_t* observed, int64_t configs,
                           float* regress, float* chol, int threads) {
    const int64_t p = patch_dims;
    std::vector<uint8_t> ok(static_cast<size_t>(configs), 1);
    parallel_for(configs, threads, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
            std::vector<int64_t> obs;
            for (int64_t d = 0; d < dims; ++d)
                if (observed[c * dims + d]) obs.push_back(d);
            const int64_t o = static_cast<int64_t>(obs.size());
            // x = S_op (o x p), then S_oo^-1 S_op by two triangular solves (row axpy form)
            std::vector<double> soo(static_cast<size_t>(o * o)), x(static_cast<size_t>(o * p));
            for (int64_t i = 0; i < o; ++i) {
                for (int64_t j = 0; j < o; ++j) soo[static_cast<size_t>(i * o + j)] = cov[obs[i] * dims + obs[j]];
                for (int64_t j = 0; j < p; ++j) x[static_cast<size_t>(i * p + j)] = cov[obs[i] * dims + patch_index[j]];
            }
            const std::vector<double> sop = x;
            if (o > 0 && !cholesky(soo, o)) {
                ok[static_cast<size_t>(c)] = 0;
                continue;
            }
            for (int64_t i = 0; i < o; ++i) {
                double* xi = x.data() + i * p;
                for (int64_t k = 0; k < i; ++k) {
                    const double l = soo[static_cast<size_t>(i * o + k)];
                    const double* xk = x.data() + k * p;
                    for (int64_t j = 0; j < p; ++j) xi[j] -= l * xk[j];
                }
                const double d = soo[static_cast<size_t>(i * o + i)];
                for (int64_t j = 0; j < p; ++j) xi[j] /= d;
            }
            for (int64_t i = o - 1; i >= 0; --i) {
                double* xi = x.data() + i * p;
                for (int64_t k = i + 1; k < o; ++k) {
                    const double l = soo[static_cast<size_t>(k * o + i)];
                    const double* xk = x.data() + k * p;
                    for (int64_t j = 0; j < p; ++j) xi[j] -= l * xk[j];
                }
                const double d = soo[static_cast<size_t>(i * o + i)];
                for (int64_t j = 0; j < p; ++j) xi[j] /= d;
            }
            // conditional covariance S_pp - S_po x
            std::vector<double> cond(static_cast<size_t>(p * p));
            for (int64_t i = 0; i < p; ++i)
                for (int64_t j = 0; j < p; ++j) cond[static_cast<size_t>(i * p + j)] = cov[patch_index[i] * dims + patch_index[j]];
            for (int64_t k = 0; k < o; ++k) {
                const double* sk = sop.data() + k * p;
                const double* xk = x.data() + k * p;
                for (int64_t i = 0; i < p; ++i) {
                    const double s = sk[i];
                    double* ci = cond.data() + i * p;
                    for (int64_t j = 0; j < p; ++j) ci[j] -= s * xk[j];
                }
            }
            for (int64_t i = 0; i < p; ++i)  // symmetrise
                for (int64_t j = 0; j < i; ++j) {
                    const double v = 0.5 * (cond[static_cast<size_t>(i * p + j)] + cond[static_cast<size_t>(j * p + i)]);
                    cond[static_cast<size_t>(i * p + j)] = cond[static_cast<size_t>(j * p + i)] = v;
                }
            if (!cholesky(cond, p)) {
                ok[static_cast<size_t>(c)] = 0;
                continue;
            }
            float* r = regress + c * dims * p;
            std::fill(r, r + dims * p, 0.0f);
            for (int64_t i = 0; i < o; ++i)
                for (int64_t j = 0; j < p; ++j) r[obs[i] * p + j] = static_cast<float>(x[static_cast<size_t>(i * p + j)]);
            float* u = chol + c * p * p;
            for (int64_t i = 0; i < p; ++i)
                for (int64_t j = 0; j < p; ++j)
                    u[j * p + i] = i >= j ? static_cast<float>(cond[static_cast<size_t>(i * p + j)]) : 0.0f;
        }
    });
    return std::all_of(ok.begin(), ok.end(), [](uint8_t v) { return v != 0; });
}

void bank_patch_samples(const float* bank, int64_t images, int64_t height, int64_t width,
                        int64_t channels, int64_t patch, const int64_t* ys, const int64_t* xs,
                        const uint64_t* streams, int64_t count, uint64_t seed, float sigma,
                        float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            int64_t r = static_cast<int64_t>(uniform01(seed, streams[b], 0) * static_cast<float>(images));
            r = std::min(r, images - 1);
            const float* src = bank + r * height * width * channels;
            float* o = out + b * patch * patch * channels;
            for (int64_t y = 0; y < patch; ++y)
                std::memcpy(o + y * patch * channels, src + ((ys[b] + y) * width + xs[b]) * channels,
                            static_cast<size_t>(patch * channels) * sizeof(float));
        }
    });
    if (sigma > 0.0f) noisy_patches(out, patch, channels, streams, count, seed, sigma, threads);
}

void noisy_patches(float* patches, int64_t patch, int64_t channels, const uint64_t* streams,
                   int64_t count, uint64_t seed, float sigma, int threads) {
    const int64_t p = channels * patch * patch;
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            float* o = patches + b * p;
            for (int64_t j = 0; j < p; ++j)
                o[j] = clip255(o[j] + sigma * normal01(seed, streams[b], static_cast<uint64_t>(2 + j)));
        }
    });
}

void categorical_patches(const float* probabilities, const int64_t* rows, int64_t values, const float* coupling,
                         int64_t channels, const uint64_t* streams, int64_t count, uint64_t seed, float* out,
                         int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        std::vector<double> u(static_cast<size_t>(values)), e(static_cast<size_t>(channels));
        for (int64_t b = begin; b < end; ++b) {
            const float* row = probabilities + rows[b] * values * 256;
            patch_uniforms(coupling, channels, rows[b], seed, streams[b], values, u.data(), e);
            for (int64_t j = 0; j < values; ++j) {
                const float* p = row + j * 256;
                double cdf = 0.0;
                int level = 255;
                for (int v = 0; v < 256; ++v) {
                    cdf += p[v];
                    if (u[static_cast<size_t>(j)] < cdf) {
                        level = v;
                        break;
                    }
                }
                out[b * values + j] = static_cast<float>(level);
            }
        }
    });
}

void logistic_mixture_patches(const float* params, const int64_t* rows, int64_t values, int64_t components,
                              const float* coupling, int64_t channels, const uint64_t* streams, int64_t count,
                              uint64_t seed, float* out, int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        std::vector<double> weights(static_cast<size_t>(components)), means(weights.size()), inverse(weights.size());
        std::vector<double> u(static_cast<size_t>(values)), e(static_cast<size_t>(channels));
        for (int64_t b = begin; b < end; ++b) {
            const float* row = params + rows[b] * values * 3 * components;
            patch_uniforms(coupling, channels, rows[b], seed, streams[b], values, u.data(), e);
            for (int64_t j = 0; j < values; ++j) {
                const float* p = row + j * 3 * components;
                double top = p[0], total = 0.0;
                for (int64_t m = 1; m < components; ++m) top = std::max(top, static_cast<double>(p[m]));
                for (int64_t m = 0; m < components; ++m) {
                    const size_t i = static_cast<size_t>(m);
                    weights[i] = std::exp(static_cast<double>(p[m]) - top);
                    total += weights[i];
                    means[i] = p[components + m];
                    inverse[i] = std::exp(-static_cast<double>(p[2 * components + m]));
                }
                auto cdf = [&](int v) {
                    double c = 0.0;
                    for (size_t i = 0; i < weights.size(); ++i)
                        c += weights[i] / (1.0 + std::exp(-(v + 0.5 - means[i]) * inverse[i]));
                    return c / total;
                };
                int low = 0, high = 255;  // the smallest level v with u < cdf(v); cdf(255) = 1
                while (low < high) {
                    const int mid = (low + high) / 2;
                    if (u[static_cast<size_t>(j)] < cdf(mid)) high = mid; else low = mid + 1;
                }
                out[b * values + j] = static_cast<float>(low);
            }
        }
    });
}

}  // namespace onnxplain
