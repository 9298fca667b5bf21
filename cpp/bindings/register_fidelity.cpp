// Bindings: fidelity: ranked perturbation.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "onnxplain/fidelity.hpp"

namespace onnxplain::bind {

void register_fidelity(py::module_& m) {
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

    m.def("rank_labels", [](const py::object& map_obj, const py::object& labels_obj, int64_t features, uint64_t seed) {
        auto map = checked<float>(map_obj, "map", 2);
        auto labels = checked<int32_t>(labels_obj, "labels", 2);
        const int64_t h = map.shape(0), w = map.shape(1);
        require(labels.shape(0) == h && labels.shape(1) == w, "labels must match the map " + shape_of(map) + ", got " + shape_of(labels));
        require(features >= 1 && features <= h * w, "features must be in 1..H*W (each needs a position)");
        const float* mp = map.data();
        const int32_t* lp = labels.data();
        require(std::all_of(mp, mp + h * w, [](float v) { return std::isfinite(v); }), "map contains NaN or infinite values");
        std::vector<char> seen(static_cast<size_t>(features), 0);
        for (int64_t p = 0; p < h * w; ++p) {
            require(lp[p] >= 0 && lp[p] < features, "labels must lie in 0..features-1");
            seen[static_cast<size_t>(lp[p])] = 1;
        }
        require(std::all_of(seen.begin(), seen.end(), [](char s) { return s != 0; }), "every feature 0..features-1 needs at least one position");
        Array<int32_t> rank({h, w});
        int32_t* rp = rank.mutable_data();
        {
            py::gil_scoped_release release;
            rank_labels(mp, lp, h * w, features, seed, rp);
        }
        return rank;
    }, py::arg("map"), py::arg("labels"), py::arg("features"), py::arg("seed"),
       "Per-position rank (H, W) int32 of its feature (labels (H, W) int32 in 0..features-1), 0 = highest mean "
       "map value; ties ordered by the shared generator's draw (seed, tie stream, feature index).");

    m.def("feature_count", [](int64_t height, int64_t width, int64_t patch) {
        require(height >= 1 && width >= 1 && patch >= 1, "height, width and patch must be >= 1");
        const int64_t count = feature_count(height, width, patch);
        require(count >= 0, "the feature count overflows int64");
        return count;
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
        const int64_t h = mask.shape(0), w = mask.shape(1), c = image.shape(2);
        require(image.shape(0) == h && image.shape(1) == w && c >= 1,
                "image must be H x W x C (C >= 1) matching the mask " + shape_of(mask) + ", got " + shape_of(image));
        const float* mp = mask.data();
        const float* ip = image.data();
        const int64_t n = removed_count(mp, h * w);
        Array<int64_t> variable({h, w}), rows(9 * n), cols(9 * n);
        Array<double> values(9 * n), rhs({n, c});
        int64_t nnz = 0;
        {
            py::gil_scoped_release release;
            nnz = imputation_system(mp, ip, h, w, c, variable.mutable_data(), rows.mutable_data(), cols.mutable_data(),
                                    values.mutable_data(), rhs.mutable_data());
        }
        return py::make_tuple(variable, rows[py::slice(0, nnz, 1)], cols[py::slice(0, nnz, 1)],
                              values[py::slice(0, nnz, 1)], rhs);
    }, py::arg("mask"), py::arg("image"),
       "ROAD's imputation system for the pixels with mask < 0.5: (variable (H, W) int64, -1 where kept; "
       "rows, cols int64 and values float64 triplets of the (n, n) matrix; rhs (n, C) float64, one column per "
       "channel of the image (H, W, C)).");

}

}  // namespace onnxplain::bind
