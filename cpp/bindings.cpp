// The one binding file: validates arrays at the boundary, releases the GIL, calls kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "onnxplain/fidelity.hpp"
#include "onnxplain/sampling.hpp"
#include "onnxplain/causal.hpp"
#include "onnxplain/kernels.hpp"
#ifdef ONNXPLAIN_WITH_CUDA
#include "onnxplain/cuda_kernels.hpp"
#endif
#include "onnxplain/rng.hpp"

namespace py = pybind11;
using namespace onnxplain;

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;  // no forcecast: dtype must match

template <class T>
Array<T> checked(const py::handle& obj, const char* name, int ndim) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + " must be a numpy array");
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<T, 0>>(arr))  // equivalent dtypes pass (pickled arrays)
        throw py::type_error(std::string(name) + " must have dtype " +
                             std::string(py::str(py::dtype::of<T>())) + ", got " +
                             std::string(py::str(arr.dtype())));
    if (!(arr.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
    if (arr.ndim() != ndim)
        throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) +
                              " dimensions, got " + std::to_string(arr.ndim()));
    return py::reinterpret_borrow<Array<T>>(arr);
}

void require(bool ok, const std::string& message) {
    if (!ok) throw py::value_error(message);
}

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + ")";
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "onnxplain's C++ core: masks, batched perturbation, score accumulation.";
#ifdef ONNXPLAIN_WITH_CUDA
    m.attr("cuda_built") = true;  // the CUDA kernels below were compiled in
#else
    m.attr("cuda_built") = false;
#endif

    m.def("philox4x32", [](uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
        const auto r = philox4x32(c0, c1, c2, c3, k0, k1);
        return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
    }, "Philox-4x32-10 block for counter (c0..c3) and key (k0, k1).");

    m.def("uniform", [](uint64_t seed, uint64_t stream, uint64_t counter) {
        return uniform01(seed, stream, counter);
    }, py::arg("seed"), py::arg("stream"), py::arg("counter"),
       "The shared generator's draw `counter` of perturbation `stream`: float32 in [0, 1).");

    m.def("window_positions", [](int64_t size, int64_t window, int64_t stride) {
        require(window >= 1 && window <= size, "window must be in 1..size");
        require(stride >= 1, "stride must be >= 1");
        Array<int64_t> out(window_positions(size, window, stride, nullptr));
        window_positions(size, window, stride, out.mutable_data());
        return out;
    }, py::arg("size"), py::arg("window"), py::arg("stride"),
       "Sliding-window offsets along one axis (int64), the last one flush with the border.");

    m.def("occlusion_masks", [](int64_t height, int64_t width, int64_t window, int64_t stride,
                                int64_t first, int64_t count, int threads) {
        require(height >= 1 && width >= 1, "height and width must be >= 1");
        require(window >= 1 && window <= std::min(height, width), "window must be in 1..min(height, width)");
        require(stride >= 1, "stride must be >= 1");
        const int64_t total = window_positions(height, window, stride, nullptr) *
                              window_positions(width, window, stride, nullptr);
        require(first >= 0 && count >= 0 && first <= total && count <= total - first,
                "windows first..first+count exceed the " + std::to_string(total) + " windows");
        Array<float> out({count, height, width});
        float* data = out.mutable_data();
        {
            py::gil_scoped_release release;
            occlusion_masks(height, width, window, stride, first, count, data, threads);
        }
        return out;
    }, py::arg("height"), py::arg("width"), py::arg("window"), py::arg("stride"),
       py::arg("first"), py::arg("count"), py::arg("threads") = 0,
       "Occlusion masks (count, height, width) float32: 0 inside the window, 1 elsewhere.");

    m.def("rise_masks", [](uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width,
                           int64_t grid, float p_keep, int threads) {
        require(height >= 1 && width >= 1, "height and width must be >= 1");
        require(grid >= 1 && grid <= std::min(height, width), "grid must be in 1..min(height, width)");
        require(p_keep > 0.0f && p_keep <= 1.0f, "p_keep must be in (0, 1]");
        require(first >= 0 && count >= 0 && count <= INT64_MAX - first, "first and count must be >= 0 and first + count must fit in int64");
        Array<float> out({count, height, width});
        float* data = out.mutable_data();
        {
            py::gil_scoped_release release;
            rise_masks(seed, first, count, height, width, grid, p_keep, data, threads);
        }
        return out;
    }, py::arg("seed"), py::arg("first"), py::arg("count"), py::arg("height"), py::arg("width"),
       py::arg("grid"), py::arg("p_keep"), py::arg("threads") = 0,
       "RISE masks (count, height, width) float32 in [0, 1] for perturbations first..first+count.");

    m.def("perturb", [](const py::object& image_obj, const py::object& baseline_obj, const py::object& masks_obj,
                        const py::object& out_obj, std::array<float, 3> gain, std::array<float, 3> bias,
                        bool bgr, const std::string& layout, int threads) {
        auto image = checked<float>(image_obj, "image", 3);
        auto baseline = checked<float>(baseline_obj, "baseline", 3);
        auto masks = checked<float>(masks_obj, "masks", 3);
        auto out = checked<float>(out_obj, "out", 4);
        require(layout == "NCHW" || layout == "NHWC", "layout must be 'NCHW' or 'NHWC', got '" + layout + "'");
        const int64_t h = image.shape(0), w = image.shape(1), b = masks.shape(0);
        require(image.shape(2) == 3, "image must be H x W x 3, got " + shape_of(image));
        require(baseline.shape(0) == h && baseline.shape(1) == w && baseline.shape(2) == 3,
                "baseline must match the image shape " + shape_of(image) + ", got " + shape_of(baseline));
        require(masks.shape(1) == h && masks.shape(2) == w,
                "masks must be B x " + std::to_string(h) + " x " + std::to_string(w) + ", got " + shape_of(masks));
        const bool nchw = layout == "NCHW";
        const bool out_ok = out.shape(0) >= b && (nchw ? (out.shape(1) == 3 && out.shape(2) == h && out.shape(3) == w)
                                                       : (out.shape(1) == h && out.shape(2) == w && out.shape(3) == 3));
        require(out_ok, "out must be at least " + std::to_string(b) + (nchw ? " x 3 x H x W" : " x H x W x 3") +
                            " for H x W = " + std::to_string(h) + " x " + std::to_string(w) + ", got " + shape_of(out));
        require(out.writeable(), "out must be writeable");
        const float* ip = image.data();
        const float* bp = baseline.data();
        const float* mp = masks.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            perturb(ip, bp, mp, b, h, w, gain.data(), bias.data(), bgr, nchw, op, threads);
        }
    }, py::arg("image"), py::arg("baseline"), py::arg("masks"), py::arg("out"), py::arg("gain"),
       py::arg("bias"), py::arg("bgr") = false, py::arg("layout") = "NCHW", py::arg("threads") = 0,
       "Writes out[b] = (masks[b] * image + (1 - masks[b]) * baseline) * gain + bias into the first "
       "B rows of out, in the model layout (channels reversed when bgr). All float32, C-contiguous.");

    m.def("accumulate", [](const py::object& scores_obj, const py::object& masks_obj, const py::object& sums_obj,
                           const py::object& counts_obj, bool complement, int threads) {
        auto scores = checked<float>(scores_obj, "scores", 2);
        auto masks = checked<float>(masks_obj, "masks", 3);
        auto sums = checked<double>(sums_obj, "sums", 3);
        auto counts = checked<double>(counts_obj, "counts", 2);
        const int64_t b = masks.shape(0), h = masks.shape(1), w = masks.shape(2), t = scores.shape(1);
        require(scores.shape(0) == b, "scores must have one row per mask: " + shape_of(scores) + " vs masks " + shape_of(masks));
        require(sums.shape(0) == t && sums.shape(1) == h && sums.shape(2) == w,
                "sums must be targets x H x W = " + std::to_string(t) + " x " + std::to_string(h) + " x " +
                    std::to_string(w) + ", got " + shape_of(sums));
        require(counts.shape(0) == h && counts.shape(1) == w, "counts must be H x W, got " + shape_of(counts));
        require(sums.writeable() && counts.writeable(), "sums and counts must be writeable");
        const float* sp = scores.data();
        const float* mp = masks.data();
        double* sumsp = sums.mutable_data();
        double* cp = counts.mutable_data();
        {
            py::gil_scoped_release release;
            accumulate(sp, mp, b, t, h * w, complement, sumsp, cp, threads);
        }
    }, py::arg("scores"), py::arg("masks"), py::arg("sums"), py::arg("counts"), py::arg("complement") = false,
       py::arg("threads") = 0,
       "sums[t] += sum_b scores[b, t] * w_b and counts += sum_b w_b, w_b = masks[b] (or 1 - masks[b] when "
       "complement), b in order. scores (B, T) float32, masks (B, H, W) float32, sums (T, H, W) and counts "
       "(H, W) float64, updated in place.");

    // ---- CUDA kernels on device memory (pointers as integers; python/onnxplain/gpu.py checks
    // shapes and dtypes of the CuPy/torch arrays they come from) ----
#ifdef ONNXPLAIN_WITH_CUDA
    m.def("cuda_device_count", &cuda::device_count, "Usable CUDA devices (0 without a driver or device).");
    m.def("cuda_occlusion_masks", [](int64_t height, int64_t width, int64_t window, int64_t stride, int64_t first,
                                     int64_t count, uintptr_t out, uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::occlusion_masks(height, width, window, stride, first, count, reinterpret_cast<float*>(out),
                              reinterpret_cast<void*>(stream));
    }, "occlusion_masks into device memory out (count, height, width) float32.");
    m.def("cuda_rise_masks", [](uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width,
                                int64_t grid, float p_keep, uintptr_t out, uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::rise_masks(seed, first, count, height, width, grid, p_keep, reinterpret_cast<float*>(out),
                         reinterpret_cast<void*>(stream));
    }, "rise_masks into device memory out (count, height, width) float32.");
    m.def("cuda_perturb", [](uintptr_t image, uintptr_t baseline, uintptr_t masks, int64_t batch, int64_t height,
                             int64_t width, std::array<float, 3> gain, std::array<float, 3> bias, bool bgr, bool nchw,
                             uintptr_t out, uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::perturb(reinterpret_cast<const float*>(image), reinterpret_cast<const float*>(baseline),
                      reinterpret_cast<const float*>(masks), batch, height, width, gain.data(), bias.data(), bgr, nchw,
                      reinterpret_cast<float*>(out), reinterpret_cast<void*>(stream));
    }, "perturb on device memory (see perturb).");
    m.def("cuda_accumulate", [](uintptr_t scores, uintptr_t masks, int64_t batch, int64_t targets, int64_t pixels,
                                bool complement, uintptr_t sums, uintptr_t counts, uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::accumulate(reinterpret_cast<const float*>(scores), reinterpret_cast<const float*>(masks), batch, targets,
                         pixels, complement, reinterpret_cast<double*>(sums), reinterpret_cast<double*>(counts),
                         reinterpret_cast<void*>(stream));
    }, "accumulate on device memory (see accumulate).");
#else
    m.def("cuda_device_count", []() { return 0; }, "Usable CUDA devices: always 0 (built without CUDA).");
#endif

    // ---- information-theoretic maps: patch samplers ----
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
            const int64_t h = image.shape(0), w = image.shape(1), n = ys.shape(0);
            require(image.shape(2) == 3, "image must be H x W x 3, got " + shape_of(image));
            check_positions(ys, xs, streams, h, w, patch);
            require(frame >= 0, "frame must be >= 0");
            const int64_t p = 3 * patch * patch, d = 3 * (patch + 2 * frame) * (patch + 2 * frame);
            require(patch_mean.shape(0) == p, "patch_mean must have 3 K^2 = " + std::to_string(p) + " entries");
            require(window_mean.shape(0) == d, "window_mean must have 3 (K + 2F)^2 = " + std::to_string(d) + " entries");
            require(regress.shape(1) == d && regress.shape(2) == p,
                    "regress must be configs x " + std::to_string(d) + " x " + std::to_string(p) + ", got " + shape_of(regress));
            require(chol.shape(0) == regress.shape(0) && chol.shape(1) == p && chol.shape(2) == p,
                    "chol must be configs x " + std::to_string(p) + " x " + std::to_string(p) + ", got " + shape_of(chol));
            require(configs.shape(0) == n, "configs must have one entry per patch");
            for (py::ssize_t b = 0; b < n; ++b)
                require(configs.data()[b] >= 0 && configs.data()[b] < regress.shape(0), "configs entry out of range");
            Array<float> out({n, patch, patch, int64_t{3}});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                gaussian_patch_samples(image.data(), h, w, patch, frame, ys.data(), xs.data(), configs.data(),
                                       streams.data(), n, seed, patch_mean.data(), window_mean.data(), regress.data(),
                                       chol.data(), reference_spread, op, threads);
            }
            return out;
        }, py::arg("image"), py::arg("ys"), py::arg("xs"), py::arg("configs"), py::arg("streams"), py::arg("seed"),
           py::arg("patch"), py::arg("frame"), py::arg("patch_mean"), py::arg("window_mean"), py::arg("regress"),
           py::arg("chol"), py::arg("reference_spread") = 0.0f, py::arg("threads") = 0,
           "Conditional-Gaussian patch samples (count, K, K, 3) float32: clip(patch_mean + A_c (window - "
           "window_mean) + s L_c z, 0, 255), c = configs[b], regress = A^T per config (configs, D, P), chol = L^T "
           "(configs, P, P), s the frame's local contrast relative to reference_spread (1 when <= 0); see sampling.hpp.");

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
            const int64_t r = bank.shape(0), h = bank.shape(1), w = bank.shape(2), n = ys.shape(0);
            require(r >= 1 && bank.shape(3) == 3, "bank must be R x H x W x 3 with R >= 1, got " + shape_of(bank));
            require(sigma >= 0.0f, "sigma must be >= 0");
            check_positions(ys, xs, streams, h, w, patch);
            Array<float> out({n, patch, patch, int64_t{3}});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                bank_patch_samples(bank.data(), r, h, w, patch, ys.data(), xs.data(), streams.data(), n, seed, sigma,
                                   op, threads);
            }
            return out;
        }, py::arg("bank"), py::arg("ys"), py::arg("xs"), py::arg("streams"), py::arg("seed"), py::arg("patch"),
           py::arg("sigma") = 0.0f, py::arg("threads") = 0,
           "Patches (count, K, K, 3) float32 copied from a random bank image (R, H, W, 3) at their own position, "
           "plus N(0, sigma^2) noise, clipped to 0..255.");

        m.def("noisy_patches", [](const py::object& patches_obj, const py::object& streams_obj, uint64_t seed,
                                  float sigma, int threads) {
            auto patches = checked<float>(patches_obj, "patches", 4);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            require(patches.shape(1) == patches.shape(2) && patches.shape(3) == 3,
                    "patches must be count x K x K x 3, got " + shape_of(patches));
            require(streams.shape(0) == patches.shape(0), "streams must have one entry per patch");
            require(sigma >= 0.0f, "sigma must be >= 0");
            require(patches.writeable(), "patches must be writeable");
            float* pp = patches.mutable_data();
            {
                py::gil_scoped_release release;
                noisy_patches(pp, patches.shape(1), streams.data(), patches.shape(0), seed, sigma, threads);
            }
        }, py::arg("patches"), py::arg("streams"), py::arg("seed"), py::arg("sigma"), py::arg("threads") = 0,
           "Adds N(0, sigma^2) noise to patches (count, K, K, 3) float32 in place, clipped to 0..255.");

        m.def("categorical_patches", [](const py::object& probabilities_obj, const py::object& rows_obj,
                                        const py::object& streams_obj, uint64_t seed, int threads) {
            auto probabilities = checked<float>(probabilities_obj, "probabilities", 3);
            auto rows = checked<int64_t>(rows_obj, "rows", 1);
            auto streams = checked<uint64_t>(streams_obj, "streams", 1);
            require(probabilities.shape(2) == 256, "probabilities must be rows x P x 256, got " + shape_of(probabilities));
            require(streams.shape(0) == rows.shape(0), "rows and streams must have the same length");
            for (py::ssize_t b = 0; b < rows.shape(0); ++b)
                require(rows.data()[b] >= 0 && rows.data()[b] < probabilities.shape(0), "rows entry out of range");
            const int64_t n = rows.shape(0), values = probabilities.shape(1);
            Array<float> out({n, values});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                categorical_patches(probabilities.data(), rows.data(), values, streams.data(), n, seed, op, threads);
            }
            return out;
        }, py::arg("probabilities"), py::arg("rows"), py::arg("streams"), py::arg("seed"), py::arg("threads") = 0,
           "Values (count, P) float32 in 0..255 drawn per entry from 256-level distributions probabilities[rows[b]] "
           "(rows x P x 256) by inverse CDF with the shared generator.");

        m.def("paste_patches", [check_positions](
                  const py::object& image_obj, const py::object& samples_obj, const py::object& ys_obj,
                  const py::object& xs_obj, const py::object& out_obj, std::array<float, 3> gain,
                  std::array<float, 3> bias, bool bgr, const std::string& layout, int threads) {
            auto image = checked<float>(image_obj, "image", 3);
            auto samples = checked<float>(samples_obj, "samples", 4);
            auto ys = checked<int64_t>(ys_obj, "ys", 1);
            auto xs = checked<int64_t>(xs_obj, "xs", 1);
            auto out = checked<float>(out_obj, "out", 4);
            require(layout == "NCHW" || layout == "NHWC", "layout must be 'NCHW' or 'NHWC', got '" + layout + "'");
            const int64_t h = image.shape(0), w = image.shape(1), n = ys.shape(0), k = samples.shape(1);
            require(image.shape(2) == 3, "image must be H x W x 3, got " + shape_of(image));
            require(samples.shape(0) == n && samples.shape(2) == k && samples.shape(3) == 3,
                    "samples must be count x K x K x 3 with one per position, got " + shape_of(samples));
            Array<uint64_t> dummy(n);  // positions check wants streams; paste has none
            check_positions(ys, xs, dummy, h, w, k);
            const bool nchw = layout == "NCHW";
            const bool out_ok = out.shape(0) >= n && (nchw ? (out.shape(1) == 3 && out.shape(2) == h && out.shape(3) == w)
                                                           : (out.shape(1) == h && out.shape(2) == w && out.shape(3) == 3));
            require(out_ok, "out must be at least " + std::to_string(n) + (nchw ? " x 3 x H x W" : " x H x W x 3") +
                                " for the image, got " + shape_of(out));
            require(out.writeable(), "out must be writeable");
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                paste_patches(image.data(), h, w, samples.data(), k, ys.data(), xs.data(), n, gain.data(), bias.data(),
                              bgr, nchw, op, threads);
            }
        }, py::arg("image"), py::arg("samples"), py::arg("ys"), py::arg("xs"), py::arg("out"), py::arg("gain"),
           py::arg("bias"), py::arg("bgr") = false, py::arg("layout") = "NCHW", py::arg("threads") = 0,
           "Writes into the first count rows of out the preprocessed image with samples[b] (K x K x 3) pasted at "
           "(ys[b], xs[b]), in the model layout.");
    }

    // ---- multiple causal explanations: search ----

    m.def("causal_split_boxes", [](uint64_t seed, const py::object& streams_obj, const py::object& counters_obj,
                                   const py::object& boxes_obj, int64_t min_area) {
        auto streams = checked<int64_t>(streams_obj, "streams", 1);
        auto counters = checked<int64_t>(counters_obj, "counters", 1);
        auto boxes = checked<int32_t>(boxes_obj, "boxes", 2);
        const int64_t n = boxes.shape(0);
        require(boxes.shape(1) == 4, "boxes must be N x 4 (y0, x0, y1, x1), got " + shape_of(boxes));
        require(streams.shape(0) == n && counters.shape(0) == n, "streams and counters need one entry per box");
        Array<int32_t> out({n, int64_t{4}, int64_t{4}});
        const int64_t* sp = streams.data();
        const int64_t* cp = counters.data();
        const int32_t* bp = boxes.data();
        int32_t* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            split_boxes(seed, sp, cp, bp, n, min_area, op);
        }
        return out;
    }, py::arg("seed"), py::arg("streams"), py::arg("counters"), py::arg("boxes"), py::arg("min_area"),
       "Children (N, 4, 4) int32 of N boxes split at a random interior point (draws counters[i] and "
       "counters[i] + 1 of stream streams[i]); boxes that are too small are repeated 4 times.");

    m.def("causal_box_masks", [](const py::object& boxes_obj, const py::object& groups_obj, int64_t count,
                                 int64_t height, int64_t width, int threads) {
        auto boxes = checked<int32_t>(boxes_obj, "boxes", 2);
        auto groups = checked<int64_t>(groups_obj, "groups", 1);
        const int64_t n = boxes.shape(0);
        require(boxes.shape(1) == 4, "boxes must be N x 4 (y0, x0, y1, x1), got " + shape_of(boxes));
        require(groups.shape(0) == n, "groups needs one entry per box");
        require(height >= 1 && width >= 1 && count >= 0, "height, width must be >= 1 and count >= 0");
        const int64_t* gp = groups.data();
        for (int64_t i = 0; i < n; ++i)
            require(gp[i] >= 0 && gp[i] < count && (i == 0 || gp[i] >= gp[i - 1]),
                    "groups must be non-decreasing mask indices in 0..count-1");
        Array<float> out({count, height, width});
        const int32_t* bp = boxes.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            box_masks(bp, gp, n, count, height, width, op, threads);
        }
        return out;
    }, py::arg("boxes"), py::arg("groups"), py::arg("count"), py::arg("height"), py::arg("width"),
       py::arg("threads") = 0, "Masks (count, H, W) float32: mask g is 1 on the union of the boxes of group g.");

    m.def("causal_credit_boxes", [](const py::object& boxes_obj, const py::object& values_obj, const py::object& map_obj) {
        auto boxes = checked<int32_t>(boxes_obj, "boxes", 2);
        auto values = checked<double>(values_obj, "values", 1);
        auto map = checked<double>(map_obj, "map", 2);
        require(boxes.shape(1) == 4, "boxes must be N x 4 (y0, x0, y1, x1), got " + shape_of(boxes));
        require(values.shape(0) == boxes.shape(0), "values needs one entry per box");
        require(map.writeable(), "map must be writeable");
        const int32_t* bp = boxes.data();
        const double* vp = values.data();
        double* mp = map.mutable_data();
        const int64_t n = boxes.shape(0), h = map.shape(0), w = map.shape(1);
        {
            py::gil_scoped_release release;
            credit_boxes(bp, vp, n, h, w, mp);
        }
    }, py::arg("boxes"), py::arg("values"), py::arg("map"),
       "Adds values[b] to the pixels of box b of the (H, W) float64 map, in place.");

    m.def("causal_sibling_responsibility", [](const py::object& passes_obj, const py::object& areas_obj) {
        auto passes = checked<uint8_t>(passes_obj, "passes", 2);
        auto areas = checked<int64_t>(areas_obj, "areas", 2);
        const int64_t n = passes.shape(0);
        require(passes.shape(1) == 16, "passes must be N x 16, got " + shape_of(passes));
        require(areas.shape(0) == n && areas.shape(1) == 4, "areas must be N x 4, got " + shape_of(areas));
        Array<double> resp({n, int64_t{4}});
        Array<int32_t> chosen(n);
        const uint8_t* pp = passes.data();
        const int64_t* ap = areas.data();
        double* rp = resp.mutable_data();
        int32_t* cp = chosen.mutable_data();
        {
            py::gil_scoped_release release;
            sibling_responsibility(pp, ap, n, rp, cp);
        }
        return py::make_tuple(resp, chosen);
    }, py::arg("passes"), py::arg("areas"),
       "(responsibility (N, 4) float64, chosen (N,) int32) of the children of N refined boxes from the "
       "outcome of their 16 subsets (see causal.hpp).");

    m.def("causal_rank_masks", [](const py::object& rank_obj, const py::object& cuts_obj, int threads) {
        auto rank = checked<int32_t>(rank_obj, "rank", 2);
        auto cuts = checked<int64_t>(cuts_obj, "cuts", 1);
        const int64_t count = cuts.shape(0), h = rank.shape(0), w = rank.shape(1);
        Array<float> out({count, h, w});
        const int32_t* rp = rank.data();
        const int64_t* cp = cuts.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            rank_masks(rp, cp, count, h * w, op, threads);
        }
        return out;
    }, py::arg("rank"), py::arg("cuts"), py::arg("threads") = 0,
       "Masks (K, H, W) float32: mask k shows the pixels whose rank is below cuts[k].");

    m.def("causal_disc_masks", [](const py::object& centres_obj, const py::object& radii_obj,
                                  const py::object& allowed_obj, int threads) {
        auto centres = checked<float>(centres_obj, "centres", 2);
        auto radii = checked<float>(radii_obj, "radii", 1);
        auto allowed = checked<uint8_t>(allowed_obj, "allowed", 2);
        const int64_t count = centres.shape(0), h = allowed.shape(0), w = allowed.shape(1);
        require(centres.shape(1) == 2, "centres must be K x 2 (y, x), got " + shape_of(centres));
        require(radii.shape(0) == count, "radii needs one entry per centre");
        Array<float> out({count, h, w});
        const float* cp = centres.data();
        const float* rp = radii.data();
        const uint8_t* ap = allowed.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            disc_masks(cp, rp, ap, count, h, w, op, threads);
        }
        return out;
    }, py::arg("centres"), py::arg("radii"), py::arg("allowed"), py::arg("threads") = 0,
       "Spotlight masks (K, H, W) float32: the allowed pixels within radii[k] of centres[k].");

    m.def("causal_spotlight_centres", [](uint64_t seed, int64_t first, int64_t count, const py::object& resp_obj,
                                         const py::object& allowed_obj, float radius, int64_t steps, int threads) {
        auto resp = checked<float>(resp_obj, "responsibility", 2);
        auto allowed = checked<uint8_t>(allowed_obj, "allowed", 2);
        const int64_t h = resp.shape(0), w = resp.shape(1);
        require(allowed.shape(0) == h && allowed.shape(1) == w, "allowed must match the responsibility map");
        require(first >= 0 && count >= 0 && radius > 0 && steps >= 0, "first, count, steps >= 0 and radius > 0");
        Array<float> out({count, int64_t{2}});
        const float* rp = resp.data();
        const uint8_t* ap = allowed.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            spotlight_centres(seed, first, count, rp, ap, h, w, radius, steps, op, threads);
        }
        return out;
    }, py::arg("seed"), py::arg("first"), py::arg("count"), py::arg("responsibility"), py::arg("allowed"),
       py::arg("radius"), py::arg("steps"), py::arg("threads") = 0,
       "Centres (count, 2) float32 (y, x) of spotlights first..first+count-1: random starts moved towards "
       "responsibility.");

    m.def("causal_mask_parts", [](const py::object& mask_obj, int64_t cell) {
        auto mask = checked<uint8_t>(mask_obj, "mask", 2);
        require(cell >= 1, "cell must be >= 1");
        const int64_t h = mask.shape(0), w = mask.shape(1);
        Array<int32_t> labels({h, w});
        const uint8_t* mp = mask.data();
        int32_t* lp = labels.mutable_data();
        int64_t parts;
        {
            py::gil_scoped_release release;
            parts = mask_parts(mp, h, w, cell, lp);
        }
        return py::make_tuple(labels, parts);
    }, py::arg("mask"), py::arg("cell"),
       "(labels (H, W) int32, P): the 4-connected parts of mask within cell x cell tiles, 1..P, 0 outside.");

    m.def("causal_drop_masks", [](const py::object& labels_obj, const py::object& drop_obj, int threads) {
        auto labels = checked<int32_t>(labels_obj, "labels", 2);
        auto drop = checked<uint8_t>(drop_obj, "drop", 2);
        const int64_t h = labels.shape(0), w = labels.shape(1), count = drop.shape(0), parts = drop.shape(1) - 1;
        require(parts >= 0, "drop must have parts + 1 columns");
        const int32_t* lp = labels.data();
        for (int64_t p = 0; p < h * w; ++p)
            require(lp[p] >= 0 && lp[p] <= parts, "labels must lie in 0..parts (drop has parts + 1 columns)");
        Array<float> out({count, h, w});
        const uint8_t* dp = drop.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            drop_masks(lp, dp, count, parts, h * w, op, threads);
        }
        return out;
    }, py::arg("labels"), py::arg("drop"), py::arg("threads") = 0,
       "Masks (K, H, W) float32: the labelled parts (labels > 0) minus those with drop[k][label] set.");

    // ---- fidelity: ranked perturbation ----
    m.attr("NOISE_STREAM") = kNoiseStream;  // stream of the "noise" perturbation image
    m.def("rank_features", [](const py::object& map_obj, int64_t patch, uint64_t seed) {
        auto map = checked<float>(map_obj, "map", 2);
        const int64_t h = map.shape(0), w = map.shape(1);
        require(h >= 1 && w >= 1, "map must not be empty");
        require(patch >= 1 && patch <= std::max(h, w), "patch must be in 1..max(height, width)");
        const float* mp = map.data();
        require(std::all_of(mp, mp + h * w, [](float v) { return std::isfinite(v); }), "map contains NaN or infinite values");
        Array<int32_t> rank({h, w});
        int32_t* rp = rank.mutable_data();
        {
            py::gil_scoped_release release;
            rank_features(mp, h, w, patch, seed, rp);
        }
        return rank;
    }, py::arg("map"), py::arg("patch"), py::arg("seed"),
       "Per-pixel rank (H, W) int32 of its patch x patch feature, 0 = highest mean map value; ties "
       "ordered by the shared generator's draw (seed, tie stream, feature index).");

    m.def("feature_count", [](int64_t height, int64_t width, int64_t patch) {
        require(height >= 1 && width >= 1 && patch >= 1, "height, width and patch must be >= 1");
        return feature_count(height, width, patch);
    }, py::arg("height"), py::arg("width"), py::arg("patch"), "ceil(height / patch) * ceil(width / patch).");

    m.def("ranked_masks", [](const py::object& rank_obj, const py::object& removed_obj, bool insert, int threads) {
        auto rank = checked<int32_t>(rank_obj, "rank", 2);
        auto removed = checked<int64_t>(removed_obj, "removed", 1);
        const int64_t h = rank.shape(0), w = rank.shape(1), b = removed.shape(0);
        const int64_t* kp = removed.data();
        require(std::all_of(kp, kp + b, [](int64_t k) { return k >= 0; }), "removed counts must be >= 0");
        Array<float> out({b, h, w});
        const int32_t* rp = rank.data();
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            ranked_masks(rp, h * w, kp, b, insert, op, threads);
        }
        return out;
    }, py::arg("rank"), py::arg("removed"), py::arg("insert") = false, py::arg("threads") = 0,
       "Masks (B, H, W) float32: 0 where rank < removed[b] (1 elsewhere), or the complement when insert.");

    m.def("random_map", [](uint64_t seed, int64_t height, int64_t width) {
        require(height >= 1 && width >= 1, "height and width must be >= 1");
        Array<float> out({height, width});
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            random_map(seed, height * width, op);
        }
        return out;
    }, py::arg("seed"), py::arg("height"), py::arg("width"), "Uniform [0, 1) map (H, W) float32 from the shared generator.");

    m.def("gaussian", [](uint64_t seed, uint64_t stream, int64_t count, int threads) {
        require(count >= 0, "count must be >= 0");
        Array<float> out(count);
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            gaussian(seed, stream, count, op, threads);
        }
        return out;
    }, py::arg("seed"), py::arg("stream"), py::arg("count"), py::arg("threads") = 0,
       "count standard normal float32 draws (Box-Muller) of perturbation `stream`.");

    m.def("imputation_system", [](const py::object& mask_obj, const py::object& image_obj) {
        auto mask = checked<float>(mask_obj, "mask", 2);
        auto image = checked<float>(image_obj, "image", 3);
        const int64_t h = mask.shape(0), w = mask.shape(1);
        require(image.shape(0) == h && image.shape(1) == w && image.shape(2) == 3,
                "image must be H x W x 3 matching the mask " + shape_of(mask) + ", got " + shape_of(image));
        const float* mp = mask.data();
        const float* ip = image.data();
        const int64_t n = removed_count(mp, h * w);
        Array<int64_t> variable({h, w}), rows(9 * n), cols(9 * n);
        Array<double> values(9 * n), rhs({n, int64_t{3}});
        int64_t nnz = 0;
        {
            py::gil_scoped_release release;
            nnz = imputation_system(mp, ip, h, w, variable.mutable_data(), rows.mutable_data(), cols.mutable_data(),
                                    values.mutable_data(), rhs.mutable_data());
        }
        return py::make_tuple(variable, rows[py::slice(0, nnz, 1)], cols[py::slice(0, nnz, 1)],
                              values[py::slice(0, nnz, 1)], rhs);
    }, py::arg("mask"), py::arg("image"),
       "ROAD's imputation system for the pixels with mask < 0.5: (variable (H, W) int64, -1 where kept; "
       "rows, cols int64 and values float64 triplets of the (n, n) matrix; rhs (n, 3) float64).");

}
