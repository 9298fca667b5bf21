// Bindings: multiple causal explanations: search.
#include "common.hpp"

#include "onnxplain/causal.hpp"

namespace onnxplain::bind {

void register_causal(py::module_& m) {
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
}

}  // namespace onnxplain::bind
