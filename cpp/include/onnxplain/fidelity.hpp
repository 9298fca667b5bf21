// Fidelity evaluation kernels: rank the features of an attribution map, build the masks of a
// cumulative perturbation in that order, random maps, Gaussian noise, and the sparse linear
// system of ROAD's noisy linear imputation. Arrays are dense and row-major; the binding layer
// validates shapes. Every output element is written by exactly one thread, so results never
// depend on `threads` (0 = all hardware threads).
#pragma once
#include <cstdint>

namespace onnxplain {

/// Streams of the shared generator reserved by these kernels (perturbation indices are small).
constexpr uint64_t kTieStream = ~uint64_t{0};         // tie-breaking noise of `rank_features`
constexpr uint64_t kNoiseStream = ~uint64_t{0} - 1;   // the "noise" perturbation image
constexpr uint64_t kRandomMapStream = ~uint64_t{0} - 2;  // `random_map`

/// Number of features of a height x width map cut into patch x patch squares (the last row and
/// column of patches may be smaller): ceil(height / patch) * ceil(width / patch), or -1 when that
/// overflows int64.
int64_t feature_count(int64_t height, int64_t width, int64_t patch);

/// Ranks features by importance: a feature's score is the mean of `map` over its positions
/// (labels[p] = feature of position p, in 0..features-1, every feature present); rank 0 is the
/// highest score. Equal scores are ordered by a tie-break key uniform01(seed, kTieStream,
/// feature index) (smaller first), so ranking is a deterministic, seeded permutation. Writes
/// rank[p] = rank of position p's feature (int32). `map` must be finite.
void rank_labels(const float* map, const int32_t* labels, int64_t positions, int64_t features, uint64_t seed,
                 int32_t* rank);

/// `rank_labels` with the features of `feature_count`: patch x patch squares numbered row-major.
void rank_features(const float* map, int64_t height, int64_t width, int64_t patch, uint64_t seed,
                   int32_t* rank);

/// Masks of a cumulative ranked perturbation, value 1 = image pixel, 0 = replaced:
/// out[b][p] = (rank[p] < removed[b]) ? 0 : 1, or the complement when `insert` (only the
/// `removed[b]` best-ranked features shown). rank: pixels int32; removed: batch; out:
/// batch x pixels float32.
void ranked_masks(const int32_t* rank, int64_t pixels, const int64_t* removed, int64_t batch,
                  bool insert, float* out, int threads);

/// A random attribution map: out[p] = uniform01(seed, kRandomMapStream, p), pixels float32.
void random_map(uint64_t seed, int64_t pixels, float* out);

/// Standard normal draws (Box-Muller on the shared generator): out[i] = N(0, 1) from draws
/// 2i and 2i + 1 of perturbation `stream` under `seed`.
void gaussian(uint64_t seed, uint64_t stream, int64_t count, float* out, int threads);

/// Number of removed pixels (mask value < 0.5): the unknowns of `imputation_system`.
int64_t removed_count(const float* mask, int64_t pixels);

/// ROAD's noisy linear imputation system (Rong et al. 2022) for a height x width x C image whose
/// pixels with mask < 0.5 are removed. Unknown k is the k-th removed pixel in row-major order
/// (variable[p] = k, -1 for kept pixels). Each unknown's equation says it equals the weighted mean
/// of its in-image 8 neighbours (weight 1/6 direct, 1/12 diagonal, normalised by the weights
/// present): sum_j w_j x_j - (sum_j w_j) x_i = 0, known neighbours moved to the right side.
/// Writes the matrix as triplets (rows, cols, values; at most 9 per unknown, the count returned)
/// and rhs (unknowns x C, float64; one right-hand side per channel, the matrix is shared).
int64_t imputation_system(const float* mask, const float* image, int64_t height, int64_t width,
                          int64_t channels, int64_t* variable, int64_t* rows, int64_t* cols, double* values,
                          double* rhs);

}  // namespace onnxplain
