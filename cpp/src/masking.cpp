#include "onnxplain/masking.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "onnxplain/parallel.hpp"
#include "onnxplain/pixel.hpp"
#include "onnxplain/rng.hpp"

namespace onnxplain {

namespace {
constexpr int64_t kBlock = 4096;  // positions per blend task: contiguous, enough parallel slack
}

void Preprocessing::apply(const float* inputs, int64_t count, float* out) const {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n) {
            const float* in = inputs + n * size();
            float* o = out + n * size();
            for (int64_t p = 0; p < positions; ++p)
                for (int64_t c = 0; c < channels; ++c) {
                    const auto k = static_cast<size_t>(c);
                    o[offset(p, c)] = in[p * channels + source[k]] * gain[k] + bias[k];
                }
        }
    }, grain_for(size()));
}

PreparedInput::PreparedInput(Preprocessing preprocessing, const float* input, const float* replacement)
    : prep_(std::move(preprocessing)),
      input_(static_cast<size_t>(prep_.size())),
      replacement_(static_cast<size_t>(prep_.size())) {
    const int threads = prep_.threads;
    prep_.threads = 1;  // one input each: no thread start-up
    prep_.apply(input, 1, input_.data());
    prep_.apply(replacement, 1, replacement_.data());
    prep_.threads = threads;
}

void PreparedInput::blend(const float* masks, int64_t batch, float* out) const {
    const int64_t positions = prep_.positions, channels = prep_.channels, size = prep_.size();
    const int64_t blocks = (positions + kBlock - 1) / kBlock;
    const float* __restrict x = input_.data();
    const float* __restrict z = replacement_.data();
    parallel_for(batch * blocks, prep_.threads, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
            const int64_t b = task / blocks, p0 = (task % blocks) * kBlock, p1 = std::min(positions, p0 + kBlock);
            const float* __restrict m = masks + b * positions;
            float* __restrict o = out + b * size;
            if (prep_.channels_first) {
                for (int64_t c = 0; c < channels; ++c) {
                    const int64_t base = c * positions;
                    for (int64_t p = p0; p < p1; ++p) o[base + p] = onnxplain::blend(m[p], x[base + p], z[base + p]);
                }
            } else {
                for (int64_t p = p0; p < p1; ++p)
                    for (int64_t c = 0; c < channels; ++c) {
                        const int64_t i = p * channels + c;
                        o[i] = onnxplain::blend(m[p], x[i], z[i]);
                    }
            }
        }
    }, grain_for(kBlock * channels));
}

void PreparedInput::paste(const float* samples, int64_t patch, const int64_t* ys, const int64_t* xs, int64_t count,
                          int64_t width, float* out) const {
    const int64_t channels = prep_.channels, size = prep_.size();
    parallel_for(count, prep_.threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            float* o = out + b * size;
            std::memcpy(o, input_.data(), static_cast<size_t>(size) * sizeof(float));
            const float* s = samples + b * patch * patch * channels;
            for (int64_t y = 0; y < patch; ++y)
                for (int64_t x = 0; x < patch; ++x) {
                    const int64_t p = (ys[b] + y) * width + xs[b] + x;
                    const float* v = s + (y * patch + x) * channels;
                    for (int64_t c = 0; c < channels; ++c) {
                        const auto k = static_cast<size_t>(c);
                        o[prep_.offset(p, c)] = v[prep_.source[k]] * prep_.gain[k] + prep_.bias[k];
                    }
                }
        }
    }, grain_for(size));
}

void feature_masks(const int32_t* labels, int64_t positions, const float* keep, int64_t features, int64_t batch,
                   float* out, int threads) {
    parallel_for(batch, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            const float* k = keep + b * features;
            float* o = out + b * positions;
            for (int64_t p = 0; p < positions; ++p) o[p] = k[labels[p]];
        }
    }, grain_for(positions));
}

void bernoulli_keep(uint64_t seed, int64_t first, int64_t count, int64_t features, float p_keep, float* out,
                    int threads) {
    parallel_for(count, threads, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            const auto stream = static_cast<uint64_t>(first + b);
            for (int64_t f = 0; f < features; ++f)
                out[b * features + f] = uniform01(seed, stream, static_cast<uint64_t>(f)) < p_keep ? 1.0f : 0.0f;
        }
    });
}

}  // namespace onnxplain
