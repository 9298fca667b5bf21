// Counter-based random numbers shared by every kernel (CPU now, CUDA later).
//
// Philox-4x32-10 (Salmon et al., SC'11). A draw is a pure function of
// (seed, stream, counter): `stream` is the global perturbation index and `counter`
// numbers the draws inside one perturbation. Results therefore never depend on batch
// size, thread count or device.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define ONNXPLAIN_HD __host__ __device__
#else
#define ONNXPLAIN_HD
#endif

namespace onnxplain {

struct Philox4x32 {
    uint32_t v[4];
};

ONNXPLAIN_HD inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
    const uint64_t p = static_cast<uint64_t>(a) * b;
    *hi = static_cast<uint32_t>(p >> 32);
    return static_cast<uint32_t>(p);
}

/// Ten Philox rounds on counter (c0..c3) with key (k0, k1).
ONNXPLAIN_HD inline Philox4x32 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                         uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
        uint32_t hi0, hi1;
        const uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        const uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return Philox4x32{{c0, c1, c2, c3}};
}

/// Uniform float in [0, 1) with 24 random bits: draw number `counter` of perturbation
/// `stream` under `seed`.
ONNXPLAIN_HD inline float uniform01(uint64_t seed, uint64_t stream, uint64_t counter) {
    const Philox4x32 r = philox4x32(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                                    static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    return static_cast<float>(r.v[0] >> 8) * (1.0f / 16777216.0f);
}

}  // namespace onnxplain
