// A minimal, exception-safe static-partition parallel loop over [0, n).
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace onnxplain {

/// Number of worker threads to use when the caller passes 0.
inline int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

/// Elementary operations (about a nanosecond each) a thread must have before starting one pays:
/// a thread start costs tens of microseconds, more just after onnxruntime's threads ran.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 19;

/// The `grain` for parallel_for over items of `work_per_item` elementary operations each.
inline int64_t grain_for(int64_t work_per_item) {
    return std::max<int64_t>(1, kMinWorkPerThread / std::max<int64_t>(1, work_per_item));
}

/// Calls body(begin, end) on contiguous chunks of [0, n) from up to `threads` threads
/// (0 or less: default_threads()); the calling thread runs the first chunk itself.
/// Each index is handled by exactly one call, so results are independent of `threads`.
/// Small work runs inline: at most max(1, n / grain) threads are used (grain < 1 counts as 1),
/// so every chunk but the last holds at least `grain` items and, below 2 * grain items, the
/// caller runs all of [0, n) itself without starting a thread.
/// Exceptions: one thrown by any call of body, or by starting a thread, is caught; all
/// started threads are joined; then the first exception caught is rethrown here (the
/// others are dropped, and chunks may have been left undone or half done).
template <class Body>
void parallel_for(int64_t n, int threads, const Body& body, int64_t grain = 1) {
    if (n <= 0) return;
    if (threads <= 0) threads = default_threads();
    if (grain < 1) grain = 1;
    const int64_t workers = std::min<int64_t>({threads, n, std::max<int64_t>(1, n / grain)});
    if (workers <= 1) {
        body(int64_t{0}, n);  // no thread is joinable: an exception propagates as is
        return;
    }
    std::exception_ptr error;  // the first exception caught, guarded by `mutex`
    std::mutex mutex;
    const auto keep_first = [&error, &mutex] {
        const std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
    };
    const auto run = [&body, &keep_first](int64_t begin, int64_t end) noexcept {
        try {
            body(begin, end);
        } catch (...) {
            keep_first();
        }
    };
    const int64_t chunk = (n + workers - 1) / workers;
    std::vector<std::thread> pool;
    bool started = false;  // all threads started: the caller runs its own chunk
    try {
        pool.reserve(static_cast<size_t>(workers - 1));
        for (int64_t w = 1; w < workers; ++w) {
            const int64_t begin = w * chunk, end = std::min(n, begin + chunk);
            if (begin < end) pool.emplace_back([&run, begin, end] { run(begin, end); });
        }
        started = true;
    } catch (...) {  // std::system_error or std::bad_alloc: run nothing more, join what started
        keep_first();
    }
    if (started) run(0, std::min(n, chunk));
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace onnxplain
