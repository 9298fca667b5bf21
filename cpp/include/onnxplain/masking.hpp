// The masking core: how one input, held as the user holds it, becomes model inputs.
//
// An input is `positions` x `channels` float32 values, channels last (an H x W x C image has
// H * W positions; a table row has F positions of one channel). A mask gives one value in
// [0, 1] per position, shared by its channels: 1 keeps the input, 0 takes the replacement.
// The binding layer (cpp/bindings/register_masking.cpp) validates shapes.
#pragma once
#include <cstdint>
#include <vector>

namespace onnxplain {

/// The model's preprocessing of one input: model[c][p] = input[p][source[c]] * gain[c] + bias[c],
/// stored channels x positions when channels_first (NCHW-like), else positions x channels.
struct Preprocessing {
    int64_t positions = 0;
    int64_t channels = 0;
    std::vector<float> gain, bias;  // per model channel
    std::vector<int64_t> source;    // input channel that model channel c reads
    bool channels_first = true;
    int threads = 0;  // 0 = all hardware threads

    /// Values in one input (and in one model input).
    int64_t size() const { return positions * channels; }
    /// Index of (position p, model channel c) in one model input.
    int64_t offset(int64_t p, int64_t c) const { return channels_first ? c * positions + p : p * channels + c; }
    /// out[n] = model input of inputs[n], n < count (inputs: count x size(), channels last).
    void apply(const float* inputs, int64_t count, float* out) const;
};

/// One input and its replacement, preprocessed once into the model layout.
class PreparedInput {
public:
    /// input, replacement: size() values each, channels last.
    PreparedInput(Preprocessing preprocessing, const float* input, const float* replacement);

    const Preprocessing& preprocessing() const { return prep_; }

    /// out[b] = masks[b] * P(input) + (1 - masks[b]) * P(replacement) for b < batch, which equals
    /// P(masks[b] * input + (1 - masks[b]) * replacement) as P is affine (exactly at 0 and 1).
    /// masks: batch x positions; out: batch x size().
    void blend(const float* masks, int64_t batch, float* out) const;

    /// out[b] = P(input) with samples[b] (patch x patch x channels, input space) pasted at
    /// (ys[b], xs[b]) of the positions seen as a grid `width` positions wide, b < count.
    void paste(const float* samples, int64_t patch, const int64_t* ys, const int64_t* xs, int64_t count,
               int64_t width, float* out) const;

private:
    Preprocessing prep_;
    std::vector<float> input_, replacement_;  // preprocessed, model layout
};

/// Masks over positions from masks over features: out[b][p] = keep[b][labels[p]], labels in
/// 0..features-1. keep: batch x features; out: batch x positions.
void feature_masks(const int32_t* labels, int64_t positions, const float* keep, int64_t features, int64_t batch,
                   float* out, int threads);

/// Random feature masks for perturbations first..first+count-1: keep[b][f] = 1 when the shared
/// generator's draw f of stream first + b is below p_keep, else 0. out: count x features.
void bernoulli_keep(uint64_t seed, int64_t first, int64_t count, int64_t features, float p_keep, float* out,
                    int threads);

}  // namespace onnxplain
