// Patch samplers for the information-theoretic maps (IG and PMI, issue 3).
//
// A perturbation replaces one K x K patch of the image (top-left corner ys[b], xs[b]) by a
// sample drawn from a distribution of the patch given its context. Images are H x W x C and
// patches K x K x C float32, row-major, channel last (C >= 1 channels: 1 grey, 3 RGB, ...;
// 0..255). The draws of perturbation b come from the shared generator under (seed,
// streams[b]), so a sample depends only on the seed and its stream, never on batch size or
// threads. Per-value draws are numbered in the patch's own row-major, channel-last order:
// value (pixel * C + channel) takes draw index (pixel * C + channel) (plus a fixed offset per
// kernel), so C = 3 keeps the RGB numbering and any C is the same rule. Every kernel writes
// each output element from exactly one thread (0 threads = all hardware threads). The caller
// validates shapes.
#pragma once
#include <cstdint>

namespace onnxplain {

/// Standard normal draw number `index` of a stream: Box-Muller on the uniform pair
/// (2 * (index / 2), 2 * (index / 2) + 1); even indices take the cosine, odd the sine branch.
float normal01(uint64_t seed, uint64_t stream, uint64_t index);

/// Conditional-Gaussian samples of each patch given the frame of `frame` pixels around it.
/// The window is the (K + 2F) x (K + 2F) x C block around the patch, flattened row-major,
/// channel last (D = C (K + 2F)^2 values); entries outside the image are absent. For
/// perturbation b, with c = configs[b] (the caller's frame configuration, which says which
/// entries exist):
///   sample = clip(patch_mean + A_c (w - window_mean) + L_c z, 0, 255)
/// where w is the window read from `image` (absent entries contribute 0: their rows of
/// regress[c] must be 0, and so must the rows of the patch itself), z is P = C K^2
/// standard normals (draw j = normal01(seed, streams[b], j)), A_c the P x D regression and
/// L_c the lower Cholesky factor of the conditional covariance. Both are passed transposed:
/// regress: configs x D x P (regress[c][d][i] = A_c[i][d]), chol: configs x P x P
/// (chol[c][j][i] = L_c[i][j], only i >= j read). patch_mean: P, window_mean: D.
/// out: count x K x K x C. The mean is computed once per run of equal (position, config).
/// When reference_spread > 0 the noise term is scaled by s = sqrt(v / reference_spread), v
/// the frame's local contrast: the variance of the frame pixels inside the image around
/// their own mean, per channel, averaged over channels (a Gaussian scale mixture: flat
/// context, quiet samples). reference_spread <= 0 (or no frame pixel): s = 1.
void gaussian_patch_samples(const float* image, int64_t height, int64_t width, int64_t channels,
                            int64_t patch, int64_t frame, const int64_t* ys, const int64_t* xs,
                            const int64_t* configs, const uint64_t* streams, int64_t count,
                            uint64_t seed, const float* patch_mean, const float* window_mean,
                            const float* regress, const float* chol, float reference_spread,
                            float* out, int threads);

/// The tables of gaussian_patch_samples for `configs` frame configurations of a Gaussian
/// window (D entries, covariance cov: D x D float64, symmetric positive definite; generic in
/// the layout, so any channel count). Patch entries: patch_index (P); configuration c
/// observes the entries d with observed[c][d] != 0 (configs x D, never a patch entry).
/// Writes regress[c] (D x P, float32): rows of observed entries hold (S_oo^-1 S_op), the
/// others 0; chol[c] (P x P, float32): the transposed lower Cholesky factor of S_pp - S_po
/// S_oo^-1 S_op. A jitter of 1e-9 times the mean diagonal
/// is added before each factorisation. Single-precision output, double arithmetic, one
/// configuration per thread. Returns false when a matrix is not positive definite.
bool gaussian_conditionals(const double* cov, int64_t dims, const int64_t* patch_index,
                           int64_t patch_dims, const uint8_t* observed, int64_t configs,
                           float* regress, float* chol, int threads);

/// Patches copied from a bank of R images (R x height x width x C) at the patch's own
/// position, plus independent Gaussian noise: sample = clip(bank[r][ys..ys+K, xs..xs+K] +
/// sigma z, 0, 255) with r = floor(R * u(seed, stream, 0)) and z_j = normal01(seed,
/// stream, 2 + j), j = pixel * C + channel (R = 1: always the one image). out: count x K x
/// K x C.
void bank_patch_samples(const float* bank, int64_t images, int64_t height, int64_t width,
                        int64_t channels, int64_t patch, const int64_t* ys, const int64_t* xs,
                        const uint64_t* streams, int64_t count, uint64_t seed, float sigma,
                        float* out, int threads);

/// Adds independent Gaussian noise to given patches, in place: p = clip(p + sigma z, 0,
/// 255), z_j = normal01(seed, streams[b], 2 + j), j = pixel * C + channel. patches: count x
/// K x K x C.
void noisy_patches(float* patches, int64_t patch, int64_t channels, const uint64_t* streams,
                   int64_t count, uint64_t seed, float sigma, int threads);

/// Patch values drawn from 256-level distributions, one per pixel and channel: value j of
/// perturbation b is the level v with cdf(v - 1) <= u_j < cdf(v), cdf over
/// probabilities[rows[b]][j][0..255] (the last level when rounding leaves u_j above the total).
/// Uniforms: with coupling null, u_j = uniform01(seed, streams[b], j), every value independent;
/// else values come in pixels of C = channels (j = pixel * C + channel) and a pixel's uniforms
/// are u = Phi(A z), A = coupling[rows[b]] (C x C, row-major, rows of unit norm: A A^T is the
/// channels' correlation), z_k = normal01(seed, streams[b], pixel * C + k): a Gaussian copula
/// across the channels of a pixel, pixels independent. probabilities: rows x P x 256, P a
/// multiple of C; coupling: rows x C x C or null; out: count x P float32 (0..255).
void categorical_patches(const float* probabilities, const int64_t* rows, int64_t values, const float* coupling,
                         int64_t channels, const uint64_t* streams, int64_t count, uint64_t seed, float* out,
                         int threads);

/// The same draw as categorical_patches from discretised logistic mixtures given by their
/// parameters instead of 256 probabilities: entry j of position r has M weight logits a_m, means
/// mu_m (0..255 scale) and log scales l_m at params[r][j][0..3M) (a, then mu, then l);
/// cdf(v) = sum_m softmax(a)_m sigmoid((v + 0.5 - mu_m) / e^l_m) for v < 255 and cdf(255) = 1.
/// The level is found by bisection (8 cdf evaluations instead of 256 probabilities). params:
/// positions x P x 3M; coupling as in categorical_patches; out: count x P float32 (0..255).
void logistic_mixture_patches(const float* params, const int64_t* rows, int64_t values, int64_t components,
                              const float* coupling, int64_t channels, const uint64_t* streams, int64_t count,
                              uint64_t seed, float* out, int threads);

}  // namespace onnxplain
