// The _core module: one register_* function per core area (cpp/bindings/register_*.cpp).
#include "common.hpp"

namespace onnxplain::bind {
void register_errors(py::module_& m);
void register_testing(py::module_& m);
void register_kernels(py::module_& m);
void register_masking(py::module_& m);
void register_cuda(py::module_& m);
void register_sampling(py::module_& m);
void register_causal(py::module_& m);
void register_fidelity(py::module_& m);
}  // namespace onnxplain::bind

PYBIND11_MODULE(_core, m) {
    using namespace onnxplain::bind;
    m.doc() = "onnxplain's C++ core: masks, batched perturbation, score accumulation.";
    register_errors(m);  // first: its translator is then tried after any registered later
    register_kernels(m);
    register_masking(m);
    register_cuda(m);
    register_sampling(m);
    register_causal(m);
    register_fidelity(m);
    register_testing(m);
}
