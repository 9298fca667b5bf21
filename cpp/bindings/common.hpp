// Shared by the binding files: array checks at the boundary and error messages.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

namespace onnxplain::bind {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style>;  // no forcecast: dtype must match

template <class T>
inline Array<T> checked(const py::handle& obj, const char* name, int ndim) {
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

inline void require(bool ok, const std::string& message) {
    if (!ok) throw py::value_error(message);
}

inline std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + ")";
}

}  // namespace onnxplain::bind
