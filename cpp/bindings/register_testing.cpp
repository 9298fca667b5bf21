// Test-only bindings (underscore names, not API): drive parallel_for from Python so tests can
// throw in the caller's chunk, in a worker's chunk or in every chunk, and see the partition.
#include "common.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "onnxplain/parallel.hpp"

namespace onnxplain::bind {

namespace {

enum class Kind { runtime_error, invalid_argument, bad_alloc, value_error, type_error, unknown };

Kind kind_of(const std::string& name) {
    if (name == "runtime_error") return Kind::runtime_error;
    if (name == "invalid_argument") return Kind::invalid_argument;
    if (name == "bad_alloc") return Kind::bad_alloc;
    if (name == "value_error") return Kind::value_error;
    if (name == "type_error") return Kind::type_error;
    if (name == "unknown") return Kind::unknown;
    throw py::value_error("kind must be runtime_error, invalid_argument, bad_alloc, value_error, "
                          "type_error or unknown, got " + name);
}

[[noreturn]] void throw_kind(Kind kind, const std::string& message) {
    switch (kind) {
        case Kind::invalid_argument: throw std::invalid_argument(message);
        case Kind::bad_alloc: throw std::bad_alloc();
        case Kind::value_error: throw py::value_error(message);
        case Kind::type_error: throw py::type_error(message);
        case Kind::unknown: throw 42;
        case Kind::runtime_error: break;
    }
    throw std::runtime_error(message);
}

}  // namespace

void register_testing(py::module_& m) {
    m.def("_test_parallel_throw", [](int64_t n, int threads, int64_t throw_at, int64_t grain,
                                     const std::string& kind_name) {
        const Kind kind = kind_of(kind_name);
        std::atomic<int64_t> sum{0};
        {
            py::gil_scoped_release release;
            parallel_for(n, threads, [&](int64_t begin, int64_t end) {
                int64_t local = 0;
                for (int64_t i = begin; i < end; ++i) {
                    if (i == throw_at) throw_kind(kind, "item " + std::to_string(i) + " failed");
                    local += i;
                }
                sum += local;
            }, grain);
        }
        return sum.load();
    }, py::arg("n"), py::arg("threads"), py::arg("throw_at"), py::arg("grain") = 1,
       py::arg("kind") = "runtime_error",
       "Test only. parallel_for over n items (GIL released); the item throw_at throws `kind` with "
       "the message 'item {throw_at} failed' (std::bad_alloc: its own). Returns the sum of the "
       "indices 0..n-1 when nothing throws.");

    m.def("_test_parallel_throw_all", [](int64_t n, int threads, int64_t grain) {
        py::gil_scoped_release release;
        parallel_for(n, threads, [](int64_t begin, int64_t end) {
            throw std::runtime_error("chunk " + std::to_string(begin) + ".." + std::to_string(end) +
                                     " failed");
        }, grain);
    }, py::arg("n"), py::arg("threads"), py::arg("grain") = 1,
       "Test only. parallel_for over n items (GIL released) where every chunk begin..end throws "
       "std::runtime_error('chunk {begin}..{end} failed'); exactly one comes out.");

    m.def("_test_parallel_chunks", [](int64_t n, int threads, int64_t grain) {
        std::vector<std::pair<int64_t, int64_t>> chunks;
        {
            py::gil_scoped_release release;
            std::mutex mutex;
            parallel_for(n, threads, [&](int64_t begin, int64_t end) {
                const std::lock_guard<std::mutex> lock(mutex);
                chunks.emplace_back(begin, end);
            }, grain);
        }
        std::sort(chunks.begin(), chunks.end());
        return chunks;
    }, py::arg("n"), py::arg("threads"), py::arg("grain") = 1,
       "Test only. The chunks (begin, end) parallel_for hands out, sorted; one chunk: ran inline.");
}

}  // namespace onnxplain::bind
