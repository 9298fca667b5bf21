// Bindings: CUDA kernels on device memory (pointers as integers; python/onnxplain/gpu.py checks the shapes and dtypes of the CuPy/torch arrays they come from).
#include "common.hpp"

#include <array>
#include <cstdint>
#ifdef ONNXPLAIN_WITH_CUDA
#include "onnxplain/cuda_kernels.hpp"
#endif

namespace onnxplain::bind {

void register_cuda(py::module_& m) {
#ifdef ONNXPLAIN_WITH_CUDA
    m.attr("cuda_built") = true;  // the CUDA kernels below were compiled in
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
    m.attr("cuda_built") = false;
    m.def("cuda_device_count", []() { return 0; }, "Usable CUDA devices: always 0 (built without CUDA).");
#endif
}

}  // namespace onnxplain::bind
