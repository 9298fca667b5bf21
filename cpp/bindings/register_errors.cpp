// Bindings: C++ exceptions from the core reach Python as onnxplain.errors.OnnxplainError.
#include "common.hpp"

#include <exception>

namespace onnxplain::bind {

namespace {

// onnxplain.errors.OnnxplainError, imported on first use: at module init the import could
// run onnxplain/__init__.py, which imports _core. Falls back to ValueError (its base) when
// the package cannot be imported. Called with the GIL held; the reference is kept for good.
py::handle onnxplain_error() {
    static PyObject* cls = nullptr;
    if (cls == nullptr) {
        PyObject* errors = PyImport_ImportModule("onnxplain.errors");
        if (errors != nullptr) {
            cls = PyObject_GetAttrString(errors, "OnnxplainError");
            Py_DECREF(errors);
        }
        if (cls == nullptr) {
            PyErr_Clear();
            return PyExc_ValueError;
        }
    }
    return cls;
}

}  // namespace

// Module-local translator, registered before any other so it is tried last among _core's:
// any std::exception (std::runtime_error, std::invalid_argument, std::bad_alloc, ...) becomes
// OnnxplainError with the C++ message. pybind11's own exceptions (py::value_error,
// py::type_error and the rest of the py::builtin_exception family, py::error_already_set)
// and non-std exceptions pass through to pybind11's default translation.
void register_errors(py::module_& /*m*/) {
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            std::rethrow_exception(p);
        } catch (const py::builtin_exception&) {
            throw;
        } catch (const py::error_already_set&) {
            throw;
        } catch (const std::exception& e) {
            py::set_error(onnxplain_error(), e.what());
        }
    });
}

}  // namespace onnxplain::bind
