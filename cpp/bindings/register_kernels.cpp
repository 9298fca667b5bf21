// Bindings: the shared generator, occlusion and RISE masks, score accumulation.
#include "common.hpp"

#include <algorithm>

#include "onnxplain/kernels.hpp"
#include "onnxplain/rng.hpp"

namespace onnxplain::bind {

void register_kernels(py::module_& m) {
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
        int64_t total = 0;
        require(!__builtin_mul_overflow(window_positions(height, window, stride, nullptr),
                                        window_positions(width, window, stride, nullptr), &total),
                "the number of windows overflows int64");
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
}

}  // namespace onnxplain::bind
