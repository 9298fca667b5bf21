// Bindings: the masking core (Preprocessor, PreparedInput) and feature masks.
//
//   pre = Preprocessor(shape, gain, bias, source, channels_first, threads)  # once per model
//   pre.apply(inputs, out)                        # (N, *shape) -> out[:N] in the model layout
//   prepared = pre.prepare(input, replacement)    # both preprocessed once
//   prepared.blend(masks, out)                    # (B, *shape[:-1]) masks -> out[:B]
//   prepared.paste(samples, ys, xs, out)          # images: K x K samples pasted at (y, x)
#include "common.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "onnxplain/masking.hpp"

namespace onnxplain::bind {

namespace {

std::string dims_of(const std::vector<int64_t>& dims) {
    std::string s = "(";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + ")";
}

/// A Preprocessing with the shape of one input as held (channels last) and of one model input.
struct Preprocessor {
    Preprocessing prep;
    std::vector<int64_t> shape;        // one input as held, channels last
    std::vector<int64_t> model_shape;  // one model input

    std::vector<int64_t> mask_shape() const { return {shape.begin(), shape.end() - 1}; }
};

/// A PreparedInput with its Preprocessor's shapes, for the checks at the boundary.
struct Prepared {
    std::shared_ptr<const Preprocessor> pre;
    PreparedInput core;
};

/// arr as float32 C-contiguous with dims `lead` + `tail` (lead: leading dims, checked >= min_lead).
Array<float> checked_shape(const py::object& obj, const char* name, const std::vector<int64_t>& tail,
                           const char* lead_name) {
    auto arr = checked<float>(obj, name, static_cast<int>(tail.size()) + 1);
    for (size_t i = 0; i < tail.size(); ++i)
        require(arr.shape(static_cast<py::ssize_t>(i + 1)) == tail[i],
                std::string(name) + " must be " + lead_name + " x " + dims_of(tail) + ", got " + shape_of(arr));
    return arr;
}

float* checked_out(const py::object& obj, const Preprocessor& pre, int64_t rows) {
    auto out = checked_shape(obj, "out", pre.model_shape, "N");
    require(out.shape(0) >= rows, "out must have at least " + std::to_string(rows) + " rows, got " + shape_of(out));
    require(out.writeable(), "out must be writeable");
    return out.mutable_data();
}

}  // namespace

void register_masking(py::module_& m) {
    py::class_<Preprocessor, std::shared_ptr<Preprocessor>>(m, "Preprocessor",
        "The model's preprocessing of one input held as (*positions, C) float32, channels last:\n"
        "model[c] = input[source[c]] * gain[c] + bias[c], laid out channels first (C, *positions)\n"
        "or last (*positions, C). Holds the thread count of every call made through it.")
        .def(py::init([](std::vector<int64_t> shape, std::vector<float> gain, std::vector<float> bias,
                         std::vector<int64_t> source, bool channels_first, int threads) {
                 require(shape.size() >= 2, "shape must be (*positions, channels), got " + dims_of(shape));
                 require(std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d >= 1; }),
                         "shape dimensions must be >= 1, got " + dims_of(shape));
                 const int64_t channels = shape.back();
                 const auto c = static_cast<size_t>(channels);
                 require(gain.size() == c && bias.size() == c && source.size() == c,
                         "gain, bias and source need one value per channel (" + std::to_string(channels) + ")");
                 require(std::all_of(source.begin(), source.end(), [&](int64_t s) { return s >= 0 && s < channels; }),
                         "source entries must be channel indices in 0.." + std::to_string(channels - 1));
                 auto pre = std::make_shared<Preprocessor>();
                 pre->shape = shape;
                 pre->prep.channels = channels;
                 pre->prep.positions = 1;
                 for (size_t i = 0; i + 1 < shape.size(); ++i) pre->prep.positions *= shape[i];
                 pre->prep.gain = std::move(gain);
                 pre->prep.bias = std::move(bias);
                 pre->prep.source = std::move(source);
                 pre->prep.channels_first = channels_first;
                 pre->prep.threads = threads;
                 pre->model_shape = channels_first ? std::vector<int64_t>{channels} : std::vector<int64_t>{};
                 pre->model_shape.insert(pre->model_shape.end(), shape.begin(), shape.end() - 1);
                 if (!channels_first) pre->model_shape.push_back(channels);
                 return pre;
             }),
             py::arg("shape"), py::arg("gain"), py::arg("bias"), py::arg("source"), py::arg("channels_first"),
             py::arg("threads") = 0)
        .def_property_readonly("shape", [](const Preprocessor& p) { return p.shape; },
                               "One input as held: (*positions, channels).")
        .def_property_readonly("model_shape", [](const Preprocessor& p) { return p.model_shape; },
                               "One model input, in the model layout.")
        .def_property_readonly("mask_shape", &Preprocessor::mask_shape, "One mask: the input's positions.")
        .def("apply", [](const Preprocessor& pre, const py::object& inputs_obj, const py::object& out_obj) {
                 auto inputs = checked_shape(inputs_obj, "inputs", pre.shape, "N");
                 const int64_t n = inputs.shape(0);
                 float* op = checked_out(out_obj, pre, n);
                 const float* ip = inputs.data();
                 py::gil_scoped_release release;
                 pre.prep.apply(ip, n, op);
             }, py::arg("inputs"), py::arg("out"),
             "Writes the model inputs of inputs (N, *shape) float32 into out[:N] (N, *model_shape).")
        .def("prepare", [](const std::shared_ptr<Preprocessor>& pre, const py::object& input_obj,
                           const py::object& replacement_obj) {
                 auto input = checked<float>(input_obj, "input", static_cast<int>(pre->shape.size()));
                 auto replacement = checked<float>(replacement_obj, "replacement", static_cast<int>(pre->shape.size()));
                 for (size_t i = 0; i < pre->shape.size(); ++i) {
                     const auto d = static_cast<py::ssize_t>(i);
                     require(input.shape(d) == pre->shape[i], "input must be " + dims_of(pre->shape) + ", got " + shape_of(input));
                     require(replacement.shape(d) == pre->shape[i],
                             "replacement must be " + dims_of(pre->shape) + ", got " + shape_of(replacement));
                 }
                 const float* ip = input.data();
                 const float* rp = replacement.data();
                 py::gil_scoped_release release;
                 return std::make_unique<Prepared>(Prepared{pre, PreparedInput(pre->prep, ip, rp)});
             }, py::arg("input"), py::arg("replacement"),
             "A PreparedInput: input and replacement (both *shape float32) preprocessed once.");

    py::class_<Prepared>(m, "PreparedInput",
        "One input and its replacement preprocessed once in the model layout (from Preprocessor.prepare).")
        .def_property_readonly("mask_shape", [](const Prepared& p) { return p.pre->mask_shape(); },
                               "One mask: the input's positions.")
        .def_property_readonly("model_shape", [](const Prepared& p) { return p.pre->model_shape; })
        .def("blend", [](const Prepared& p, const py::object& masks_obj, const py::object& out_obj) {
                 auto masks = checked_shape(masks_obj, "masks", p.pre->mask_shape(), "B");
                 const int64_t b = masks.shape(0);
                 float* op = checked_out(out_obj, *p.pre, b);
                 const float* mp = masks.data();
                 py::gil_scoped_release release;
                 p.core.blend(mp, b, op);
             }, py::arg("masks"), py::arg("out"),
             "out[b] = masks[b] * input + (1 - masks[b]) * replacement, preprocessed, for masks (B, *mask_shape)\n"
             "float32 in [0, 1] (1 keeps the input); writes out[:B] (model layout).")
        .def("paste", [](const Prepared& p, const py::object& samples_obj, const py::object& ys_obj,
                         const py::object& xs_obj, const py::object& out_obj) {
                 const auto& shape = p.pre->shape;
                 require(shape.size() == 3, "paste needs an H x W x C input, got " + dims_of(shape));
                 auto samples = checked<float>(samples_obj, "samples", 4);
                 auto ys = checked<int64_t>(ys_obj, "ys", 1);
                 auto xs = checked<int64_t>(xs_obj, "xs", 1);
                 const int64_t h = shape[0], w = shape[1], n = ys.shape(0), k = samples.shape(1);
                 require(xs.shape(0) == n, "ys and xs must have the same length");
                 require(samples.shape(0) == n && samples.shape(2) == k && samples.shape(3) == shape[2],
                         "samples must be count x K x K x " + std::to_string(shape[2]) + " with one per position, got " +
                             shape_of(samples));
                 require(k >= 1 && k <= std::min(h, w), "patch must be in 1..min(height, width)");
                 for (int64_t i = 0; i < n; ++i)
                     require(ys.data()[i] >= 0 && ys.data()[i] <= h - k && xs.data()[i] >= 0 && xs.data()[i] <= w - k,
                             "patch " + std::to_string(i) + " at (" + std::to_string(ys.data()[i]) + ", " +
                                 std::to_string(xs.data()[i]) + ") is not inside the " + std::to_string(h) + " x " +
                                 std::to_string(w) + " image");
                 float* op = checked_out(out_obj, *p.pre, n);
                 const float* sp = samples.data();
                 const int64_t* yp = ys.data();
                 const int64_t* xp = xs.data();
                 py::gil_scoped_release release;
                 p.core.paste(sp, k, yp, xp, n, w, op);
             }, py::arg("samples"), py::arg("ys"), py::arg("xs"), py::arg("out"),
             "Writes into out[:count] the input with samples[b] (K x K x C, input space) pasted at (ys[b], xs[b]).");

    m.def("feature_masks", [](const py::object& labels_obj, const py::object& keep_obj, int threads) {
        auto labels = checked<int32_t>(labels_obj, "labels", 2);
        auto keep = checked<float>(keep_obj, "keep", 2);
        const int64_t h = labels.shape(0), w = labels.shape(1), b = keep.shape(0), f = keep.shape(1);
        const int32_t* lp = labels.data();
        require(std::all_of(lp, lp + h * w, [f](int32_t l) { return l >= 0 && l < f; }),
                "labels must lie in 0..features-1 (keep has " + std::to_string(f) + " columns)");
        Array<float> out({b, h, w});
        float* op = out.mutable_data();
        const float* kp = keep.data();
        {
            py::gil_scoped_release release;
            feature_masks(lp, h * w, kp, f, b, op, threads);
        }
        return out;
    }, py::arg("labels"), py::arg("keep"), py::arg("threads") = 0,
       "Masks (B, H, W) float32 over positions from masks over features: out[b][y][x] = keep[b][labels[y][x]];\n"
       "labels (H, W) int32 in 0..F-1, keep (B, F) float32.");

    m.def("bernoulli_keep", [](uint64_t seed, int64_t first, int64_t count, int64_t features, float p_keep,
                               int threads) {
        require(first >= 0 && count >= 0 && features >= 1, "first, count >= 0 and features >= 1");
        require(count <= INT64_MAX - first, "first + count must fit in int64");
        require(p_keep > 0.0f && p_keep <= 1.0f, "p_keep must be in (0, 1]");
        Array<float> out({count, features});
        float* op = out.mutable_data();
        {
            py::gil_scoped_release release;
            bernoulli_keep(seed, first, count, features, p_keep, op, threads);
        }
        return out;
    }, py::arg("seed"), py::arg("first"), py::arg("count"), py::arg("features"), py::arg("p_keep"),
       py::arg("threads") = 0,
       "Feature masks (count, features) float32 of perturbations first..first+count-1: 1 where the shared\n"
       "generator's draw f of that perturbation is below p_keep, else 0.");
}

}  // namespace onnxplain::bind
