// CUDA kernels of the core: one thread per output element, the arithmetic from pixel.hpp.
// Compiled with --fmad=false so products and sums round exactly as on the CPU.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "onnxplain/cuda_kernels.hpp"
#include "onnxplain/kernels.hpp"
#include "onnxplain/pixel.hpp"

namespace onnxplain::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

void check_launch(const char* kernel) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("CUDA kernel ") + kernel + " failed: " + cudaGetErrorString(err));
}

struct Float3 {
    float v[3];
};

__global__ void occlusion_kernel(int64_t height, int64_t width, int64_t window, int64_t stride, int64_t nx,
                                 int64_t last_y, int64_t last_x, int64_t first, int64_t count, float* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t pixels = height * width;
    if (i >= count * pixels) return;
    const int64_t k = first + i / pixels, p = i % pixels, y = p / width, x = p % width;
    // Window k's offsets: k / nx and k % nx steps of `stride`, the last one flush with the border.
    const int64_t y0 = (k / nx) * stride < last_y ? (k / nx) * stride : last_y;
    const int64_t x0 = (k % nx) * stride < last_x ? (k % nx) * stride : last_x;
    out[i] = (y >= y0 && y < y0 + window && x >= x0 && x < x0 + window) ? 0.0f : 1.0f;
}

__global__ void rise_kernel(uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width,
                            int64_t grid, float p_keep, int64_t cell_h, int64_t cell_w, float* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t pixels = height * width;
    if (i >= count * pixels) return;
    const uint64_t stream = static_cast<uint64_t>(first + i / pixels);
    const int64_t p = i % pixels;
    const Tap ty = rise_tap(p / width, cell_h, rise_shift(seed, stream, grid, cell_h, 0), grid);
    const Tap tx = rise_tap(p % width, cell_w, rise_shift(seed, stream, grid, cell_w, 1), grid);
    const int64_t row0 = ty.lo * (grid + 1), row1 = ty.hi * (grid + 1);
    out[i] = bilinear(rise_node(seed, stream, row0 + tx.lo, p_keep), rise_node(seed, stream, row0 + tx.hi, p_keep),
                      rise_node(seed, stream, row1 + tx.lo, p_keep), rise_node(seed, stream, row1 + tx.hi, p_keep),
                      ty.w, tx.w);
}

__global__ void perturb_kernel(const float* image, const float* baseline, const float* masks, int64_t batch,
                               int64_t pixels, Float3 gain, Float3 bias, bool bgr, bool nchw, float* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= batch * pixels * 3) return;
    int64_t b, c, p;
    if (nchw) {
        b = i / (3 * pixels); c = (i / pixels) % 3; p = i % pixels;
    } else {
        b = i / (3 * pixels); p = (i / 3) % pixels; c = i % 3;
    }
    const int64_t src = 3 * p + (bgr ? 2 - c : c);
    const float x = image[src] * gain.v[c] + bias.v[c];
    const float z = baseline[src] * gain.v[c] + bias.v[c];
    out[i] = blend(masks[b * pixels + p], x, z);
}

__global__ void accumulate_kernel(const float* scores, const float* masks, int64_t batch, int64_t targets,
                                  int64_t pixels, bool complement, double* sums, double* counts) {
    const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    double count = counts[p];
    for (int64_t b = 0; b < batch; ++b) {
        const double w = accumulation_weight(masks[b * pixels + p], complement);
        count += w;
        for (int64_t t = 0; t < targets; ++t)
            sums[t * pixels + p] += static_cast<double>(scores[b * targets + t]) * w;
    }
    counts[p] = count;
}

}  // namespace

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error
        return 0;
    }
    return n;
}

void occlusion_masks(int64_t height, int64_t width, int64_t window, int64_t stride, int64_t first,
                     int64_t count, float* out, void* stream) {
    const int64_t nx = window_positions(width, window, stride, nullptr);
    const int64_t n = count * height * width;
    if (n == 0) return;
    occlusion_kernel<<<blocks(n), kThreads, 0, as_stream(stream)>>>(height, width, window, stride, nx,
                                                                   height - window, width - window, first, count, out);
    check_launch("occlusion_masks");
}

void rise_masks(uint64_t seed, int64_t first, int64_t count, int64_t height, int64_t width, int64_t grid,
                float p_keep, float* out, void* stream) {
    const int64_t n = count * height * width;
    if (n == 0) return;
    rise_kernel<<<blocks(n), kThreads, 0, as_stream(stream)>>>(seed, first, count, height, width, grid, p_keep,
                                                              (height + grid - 1) / grid, (width + grid - 1) / grid, out);
    check_launch("rise_masks");
}

void perturb(const float* image, const float* baseline, const float* masks, int64_t batch, int64_t height,
             int64_t width, const float gain[3], const float bias[3], bool bgr, bool nchw, float* out,
             void* stream) {
    const int64_t n = batch * height * width * 3;
    if (n == 0) return;
    const Float3 g{{gain[0], gain[1], gain[2]}}, o{{bias[0], bias[1], bias[2]}};
    perturb_kernel<<<blocks(n), kThreads, 0, as_stream(stream)>>>(image, baseline, masks, batch, height * width, g, o,
                                                                 bgr, nchw, out);
    check_launch("perturb");
}

void accumulate(const float* scores, const float* masks, int64_t batch, int64_t targets, int64_t pixels,
                bool complement, double* sums, double* counts, void* stream) {
    if (pixels == 0) return;
    accumulate_kernel<<<blocks(pixels), kThreads, 0, as_stream(stream)>>>(scores, masks, batch, targets, pixels,
                                                                         complement, sums, counts);
    check_launch("accumulate");
}

}  // namespace onnxplain::cuda
