#include "edge_sdk/thread_pool.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "edge_sdk/common.hpp"

namespace edge {
namespace {
thread_local bool t_inside_job = false;
}

int max_threads() {
  static const int cap = static_cast<int>(std::min<unsigned>(256u, 4u * std::max(1u, std::thread::hardware_concurrency())));
  return cap;
}

void check_thread_count(int64_t n, const char* option, bool zero_allowed) {
  if (n >= (zero_allowed ? 0 : 1) && n <= max_threads()) return;
  throw ArgumentError(std::string(option) + ": expected " + (zero_allowed ? "0" : "1") + ".." +
                      std::to_string(max_threads()) + (zero_allowed ? " (0 = all cores;" : " (") +
                      " at most 4x this machine's " + std::to_string(std::max(1u, std::thread::hardware_concurrency())) +
                      " hardware threads, and 256), got " + std::to_string(n));
}

ThreadPool::ThreadPool(int threads) {
  check_thread_count(threads, "threads");
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    int64_t begin;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_ >= n_ || error_) return;
      begin = next_;
      next_ += chunk_;
    }
    const int64_t end = std::min(begin + chunk_, n_);
    try {
      (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop() {
  t_inside_job = true;
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++active_;
    }
    run_chunks();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::run(int64_t n, const ChunkFn& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (workers_.empty() || t_inside_job || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mutex_);
  // A few chunks per thread balances uneven work without much scheduling overhead.
  const int64_t max_chunks = static_cast<int64_t>(size()) * 4;
  const int64_t chunk = std::max(grain, (n + max_chunks - 1) / max_chunks);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    next_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  t_inside_job = true;
  run_chunks();
  t_inside_job = false;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
    n_ = 0;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

namespace {
int initial_threads() {
  if (const char* env = std::getenv("EDGE_SDK_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return std::min(n, max_threads());
  }
  return std::min(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), max_threads());
}
std::mutex g_pool_mutex;
std::shared_ptr<ThreadPool> g_pool;
}  // namespace

std::shared_ptr<ThreadPool> default_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(initial_threads());
  return g_pool;
}

void set_num_threads(int n) {
  check_thread_count(n, "threads");
  std::shared_ptr<ThreadPool> old;  // destroyed (workers joined) outside the lock, once unused
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    if (g_pool && g_pool->size() == n) return;
    old = std::move(g_pool);
    g_pool = std::make_shared<ThreadPool>(n);
  }
}

int get_num_threads() { return default_pool()->size(); }

}  // namespace edge
