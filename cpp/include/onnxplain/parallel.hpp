// A minimal static-partition parallel loop over [0, n).
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace onnxplain {

/// Number of worker threads to use when the caller passes 0.
inline int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

/// Calls body(begin, end) on contiguous chunks of [0, n) from up to `threads` threads.
/// Each index is handled by exactly one call, so results are independent of `threads`.
template <class Body>
void parallel_for(int64_t n, int threads, const Body& body) {
    if (threads <= 0) threads = default_threads();
    const int64_t workers = std::min<int64_t>(threads, n);
    if (workers <= 1) {
        if (n > 0) body(int64_t{0}, n);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(workers - 1));
    const int64_t chunk = (n + workers - 1) / workers;
    for (int64_t w = 1; w < workers; ++w) {
        const int64_t begin = w * chunk, end = std::min(n, begin + chunk);
        if (begin < end) pool.emplace_back([&body, begin, end] { body(begin, end); });
    }
    body(0, std::min(n, chunk));
    for (auto& t : pool) t.join();
}

}  // namespace onnxplain
