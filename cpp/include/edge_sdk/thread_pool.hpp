// A small persistent thread pool for the CPU kernels. The calling thread takes part in the work,
// so a pool of n threads keeps n - 1 workers. Jobs submitted from several threads run one after
// the other; a parallel_for issued from inside a job runs inline, so nesting cannot deadlock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace edge {

// The most threads a pool (and any thread-count option) may have: 4x the hardware threads, at
// most 256. More only adds contention, and an unbounded count (threads=100000) exhausts the
// machine's process ids.
int max_threads();
// Throws ArgumentError naming `option` unless 1 <= n <= max_threads() (0 too when zero_allowed:
// "all cores").
void check_thread_count(int64_t n, const char* option, bool zero_allowed = false);

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // 1..max_threads()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), at least `grain` items per chunk,
  // and returns when all are done. The first exception thrown by fn is rethrown here. fn is
  // called through a non-owning reference, never copied: no heap allocation per call (a
  // std::function built from a lambda with a large capture would allocate each time).
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t grain = 1) {
    using Fn = std::remove_reference_t<F>;
    const ChunkFn ref{const_cast<void*>(static_cast<const void*>(&fn)),
                      [](void* f, int64_t b, int64_t e) { (*static_cast<Fn*>(f))(b, e); }};
    run(n, ref, grain);
  }

 private:
  struct ChunkFn {
    void* object;
    void (*call)(void*, int64_t, int64_t);
    void operator()(int64_t b, int64_t e) const { call(object, b, e); }
  };
  void run(int64_t n, const ChunkFn& fn, int64_t grain);
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  // current job
  const ChunkFn* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1, next_ = 0, chunks_left_ = 0;
  int active_ = 0;
  std::exception_ptr error_;
};

// The pool the kernels use unless given one. Its size defaults to the hardware concurrency
// (or EDGE_SDK_NUM_THREADS, capped at max_threads()) and can be changed with set_num_threads.
// Shared ownership: set_num_threads installs a new pool, and a kernel still running on the old
// one keeps it alive until it returns (hold the pointer for the whole call).
std::shared_ptr<ThreadPool> default_pool();
void set_num_threads(int n);
int get_num_threads();

}  // namespace edge
