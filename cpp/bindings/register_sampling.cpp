// Bindings: information-theoretic maps: patch samplers.
#include "common.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include "onnxplain/rng.hpp"
#include "onnxplain/sampling.hpp"

namespace onnxplain::bind {

namespace {

// The optional coupling argument: None, or positions x C x C float32 with C dividing the P values.
std::optional<Array<float>> checked_coupling(const py::object& coupling_obj, int64_t positions, int64_t values) {
    if (coupling_obj.is_none()) return std::nullopt;
    auto coupling = checked<float>(coupling_obj, "coupling", 3);
    const int64_t c = coupling.shape(1);
    require(coupling.shape(0) == positions && coupling.shape(2) == c && c >= 1 && values % c == 0,
            "coupling must be positions x C x C with C dividing the " + std::to_string(values) +
                " values per patch, got " + shape_of(coupling));
    return coupling;
}

}  // namespace

void register_sampling(py::module_& m) {
    {
        // Positions (count,) int64 of K x K patches fully inside height x width, and streams (count,) uint64.
        auto check_positions = [](const Array<int64_t>& ys, const Array<int64_t>& xs, const Array<uint64_t>& streams,
                                  int64_t height, int64_t width, int64_t patch) {
            require(patch >= 1 && patch <= std::min(height, width), "patch must be in 1..min(height, width)");
            require(xs.shape(0) == ys.shape(0) && streams.shape(0) == ys.shape(0),
                    "ys, xs and streams must have the same length");
            const int64_t* y = ys.data();
            const int64_t* x = xs.data();
            for (py::ssize_t b = 0; b < ys.shape(0); ++b)
                require(y[b] >= 0 && y[b] <= height - patch && x[b] >= 0 && x[b] <= width - patch,
                        "patch " + std::to_string(b) + " at (" + std::to_string(y[b]) + ", " + std::to_string(x[b]) +
                            ") is not inside the " + std::to_string(height) + " x " + std::to_string(width) + " image");
        };

        m.def("normal", [](uint64_t seed, uint64_t stream, uint64_t index) { return normal01(seed, stream, index); },
              py::arg("seed"), py::arg("stream"), py::arg("index"),
              "Standard normal draw `index` of perturbation `stream` (Box-Muller over the shared generator).");

        m.def("gaussian_patch_samples", [check_positions](
                  const py::object& image_obj, const py::object& ys_obj, const py::object& xs_obj,
                  const py::object& configs_obj, const py::object& streams_obj, uint64_t seed, int64_t patch,
                  int64_t frame, const py::object& patch_mean_obj, const py::object& window_mean_obj,
                  const py::object& regress_obj, const py::object& chol_obj, float reference_spread, int threads) {
            auto image = checked<float>(image_obj, "image", 3);
            auto ys = checked<int64_t>(ys_obj, "ys", 1);
            auto xs = checked<int64_t>(xs_obj, "xs", 1);
            auto configs = checked<int64_t>(configs_obj, "configs", 1);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            auto patch_mean = checked<float>(patch_mean_obj, "patch_mean", 1);
            auto window_mean = checked<float>(window_mean_obj, "window_mean", 1);
            auto regress = checked<float>(regress_obj, "regress", 3);
            auto chol = checked<float>(chol_obj, "chol", 3);
            const int64_t h = image.shape(0), w = image.shape(1), c = image.shape(2), n = ys.shape(0);
            require(c >= 1, "image must be H x W x C with C >= 1 channels, got " + shape_of(image));
            check_positions(ys, xs, streams, h, w, patch);
            require(frame >= 0, "frame must be >= 0");
            const int64_t p = c * patch * patch, d = c * (patch + 2 * frame) * (patch + 2 * frame);
            const std::string cs = std::to_string(c);
            require(patch_mean.shape(0) == p, "patch_mean must have C K^2 = " + cs + " x " + std::to_string(patch) + "^2 = " +
                                                  std::to_string(p) + " entries, got " + shape_of(patch_mean));
            require(window_mean.shape(0) == d, "window_mean must have C (K + 2F)^2 = " + cs + " x " +
                                                   std::to_string(patch + 2 * frame) + "^2 = " + std::to_string(d) +
                                                   " entries, got " + shape_of(window_mean));
            require(regress.shape(1) == d && regress.shape(2) == p,
                    "regress must be configs x " + std::to_string(d) + " x " + std::to_string(p) + ", got " + shape_of(regress));
            require(chol.shape(0) == regress.shape(0) && chol.shape(1) == p && chol.shape(2) == p,
                    "chol must be configs x " + std::to_string(p) + " x " + std::to_string(p) + ", got " + shape_of(chol));
            require(configs.shape(0) == n, "configs must have one entry per patch");
            for (py::ssize_t b = 0; b < n; ++b)
                require(configs.data()[b] >= 0 && configs.data()[b] < regress.shape(0), "configs entry out of range");
            Array<float> out({n, patch, patch, c});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                gaussian_patch_samples(image.data(), h, w, c, patch, frame, ys.data(), xs.data(), configs.data(),
                                       streams.data(), n, seed, patch_mean.data(), window_mean.data(), regress.data(),
                                       chol.data(), reference_spread, op, threads);
            }
            return out;
        }, py::arg("image"), py::arg("ys"), py::arg("xs"), py::arg("configs"), py::arg("streams"), py::arg("seed"),
           py::arg("patch"), py::arg("frame"), py::arg("patch_mean"), py::arg("window_mean"), py::arg("regress"),
           py::arg("chol"), py::arg("reference_spread") = 0.0f, py::arg("threads") = 0,
           "Conditional-Gaussian patch samples (count, K, K, C) float32 of an image (H, W, C): clip(patch_mean + "
           "A_c (window - window_mean) + s L_c z, 0, 255), c = configs[b], regress = A^T per config (configs, D, P), "
           "chol = L^T (configs, P, P), D = C (K + 2F)^2, P = C K^2, s the frame's local contrast relative to "
           "reference_spread (1 when <= 0); see sampling.hpp.");

        m.def("gaussian_conditionals", [](const py::object& cov_obj, const py::object& patch_index_obj,
                                          const py::object& observed_obj, int threads) {
            auto cov = checked<double>(cov_obj, "cov", 2);
            auto patch_index = checked<int64_t>(patch_index_obj, "patch_index", 1);
            auto observed = checked<uint8_t>(observed_obj, "observed", 2);
            const int64_t d = cov.shape(0), p = patch_index.shape(0), c = observed.shape(0);
            require(cov.shape(1) == d, "cov must be square, got " + shape_of(cov));
            require(observed.shape(1) == d, "observed must be configs x D = " + std::to_string(d) + ", got " + shape_of(observed));
            require(p >= 1, "patch_index must not be empty");
            std::vector<uint8_t> is_patch(static_cast<size_t>(d), 0);
            for (int64_t j = 0; j < p; ++j) {
                const int64_t i = patch_index.data()[j];
                require(i >= 0 && i < d && !is_patch[static_cast<size_t>(i)], "patch_index entries must be distinct indices in 0..D-1");
                is_patch[static_cast<size_t>(i)] = 1;
            }
            for (int64_t k = 0; k < c * d; ++k)
                require(!(observed.data()[k] && is_patch[static_cast<size_t>(k % d)]), "observed entries must not be patch entries");
            Array<float> regress({c, d, p});
            Array<float> chol({c, p, p});
            float* rp = regress.mutable_data();
            float* lp = chol.mutable_data();
            bool ok;
            {
                py::gil_scoped_release release;
                ok = gaussian_conditionals(cov.data(), d, patch_index.data(), p, observed.data(), c, rp, lp, threads);
            }
            require(ok, "covariance is not positive definite (use shrinkage > 0)");
            return py::make_tuple(regress, chol);
        }, py::arg("cov"), py::arg("patch_index"), py::arg("observed"), py::arg("threads") = 0,
           "Tables of gaussian_patch_samples for each frame configuration: (regress (configs, D, P), chol (configs, "
           "P, P)) float32, the transposed regression S_oo^-1 S_op on the observed rows and the transposed Cholesky "
           "factor of the conditional covariance. cov (D, D) float64, patch_index (P,) int64, observed (configs, D) "
           "uint8.");

        m.def("bank_patch_samples", [check_positions](
                  const py::object& bank_obj, const py::object& ys_obj, const py::object& xs_obj,
                  const py::object& streams_obj, uint64_t seed, int64_t patch, float sigma, int threads) {
            auto bank = checked<float>(bank_obj, "bank", 4);
            auto ys = checked<int64_t>(ys_obj, "ys", 1);
            auto xs = checked<int64_t>(xs_obj, "xs", 1);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            const int64_t r = bank.shape(0), h = bank.shape(1), w = bank.shape(2), c = bank.shape(3), n = ys.shape(0);
            require(r >= 1 && c >= 1, "bank must be R x H x W x C with R >= 1 images and C >= 1 channels, got " +
                                          shape_of(bank));
            require(sigma >= 0.0f, "sigma must be >= 0");
            check_positions(ys, xs, streams, h, w, patch);
            Array<float> out({n, patch, patch, c});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                bank_patch_samples(bank.data(), r, h, w, c, patch, ys.data(), xs.data(), streams.data(), n, seed, sigma,
                                   op, threads);
            }
            return out;
        }, py::arg("bank"), py::arg("ys"), py::arg("xs"), py::arg("streams"), py::arg("seed"), py::arg("patch"),
           py::arg("sigma") = 0.0f, py::arg("threads") = 0,
           "Patches (count, K, K, C) float32 copied from a random bank image (R, H, W, C) at their own position, "
           "plus N(0, sigma^2) noise, clipped to 0..255.");

        m.def("noisy_patches", [](const py::object& patches_obj, const py::object& streams_obj, uint64_t seed,
                                  float sigma, int threads) {
            auto patches = checked<float>(patches_obj, "patches", 4);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            require(patches.shape(1) == patches.shape(2) && patches.shape(1) >= 1 && patches.shape(3) >= 1,
                    "patches must be count x K x K x C with K, C >= 1, got " + shape_of(patches));
            require(streams.shape(0) == patches.shape(0), "streams must have one entry per patch");
            require(sigma >= 0.0f, "sigma must be >= 0");
            require(patches.writeable(), "patches must be writeable");
            float* pp = patches.mutable_data();
            {
                py::gil_scoped_release release;
                noisy_patches(pp, patches.shape(1), patches.shape(3), streams.data(), patches.shape(0), seed, sigma,
                              threads);
            }
        }, py::arg("patches"), py::arg("streams"), py::arg("seed"), py::arg("sigma"), py::arg("threads") = 0,
           "Adds N(0, sigma^2) noise to patches (count, K, K, C) float32 in place, clipped to 0..255.");

        m.def("categorical_patches", [](const py::object& probabilities_obj, const py::object& rows_obj,
                                        const py::object& streams_obj, uint64_t seed, int threads,
                                        const py::object& coupling_obj) {
            auto probabilities = checked<float>(probabilities_obj, "probabilities", 3);
            auto rows = checked<int64_t>(rows_obj, "rows", 1);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            require(probabilities.shape(2) == 256, "probabilities must be rows x P x 256, got " + shape_of(probabilities));
            require(streams.shape(0) == rows.shape(0), "rows and streams must have the same length");
            for (py::ssize_t b = 0; b < rows.shape(0); ++b)
                require(rows.data()[b] >= 0 && rows.data()[b] < probabilities.shape(0), "rows entry out of range");
            const int64_t n = rows.shape(0), values = probabilities.shape(1);
            const auto coupling = checked_coupling(coupling_obj, probabilities.shape(0), values);
            Array<float> out({n, values});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                categorical_patches(probabilities.data(), rows.data(), values, coupling ? coupling->data() : nullptr,
                                    coupling ? coupling->shape(1) : 1, streams.data(), n, seed, op, threads);
            }
            return out;
        }, py::arg("probabilities"), py::arg("rows"), py::arg("streams"), py::arg("seed"), py::arg("threads") = 0,
           py::arg("coupling") = py::none(),
           "Values (count, P) float32 in 0..255 drawn per entry from 256-level distributions probabilities[rows[b]] "
           "(rows x P x 256) by inverse CDF with the shared generator: every entry independently, or with coupling "
           "(rows x C x C, A with A A^T the channels' correlation) a pixel's C channels through a Gaussian copula.");

        m.def("logistic_mixture_patches", [](const py::object& params_obj, const py::object& rows_obj,
                                             const py::object& streams_obj, uint64_t seed, int threads,
                                             const py::object& coupling_obj) {
            auto params = checked<float>(params_obj, "params", 3);
            auto rows = checked<int64_t>(rows_obj, "rows", 1);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            require(params.shape(2) > 0 && params.shape(2) % 3 == 0,
                    "params must be rows x P x 3M (M weight logits, M means, M log scales), got " + shape_of(params));
            require(streams.shape(0) == rows.shape(0), "rows and streams must have the same length");
            for (py::ssize_t b = 0; b < rows.shape(0); ++b)
                require(rows.data()[b] >= 0 && rows.data()[b] < params.shape(0), "rows entry out of range");
            const int64_t n = rows.shape(0), values = params.shape(1), components = params.shape(2) / 3;
            const auto coupling = checked_coupling(coupling_obj, params.shape(0), values);
            Array<float> out({n, values});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                logistic_mixture_patches(params.data(), rows.data(), values, components,
                                         coupling ? coupling->data() : nullptr, coupling ? coupling->shape(1) : 1,
                                         streams.data(), n, seed, op, threads);
            }
            return out;
        }, py::arg("params"), py::arg("rows"), py::arg("streams"), py::arg("seed"), py::arg("threads") = 0,
           py::arg("coupling") = py::none(),
           "Values (count, P) float32 in 0..255 drawn per entry from the discretised logistic mixture params[rows[b]] "
           "(rows x P x 3M: M weight logits, M means on the 0..255 scale, M log scales) by inverse CDF (bisection) "
           "with the shared generator: the draw categorical_patches makes from the mixture's 256 probabilities (the same "
           "coupling).");
    }
}

}  // namespace onnxplain::bind
