// A small fork-join pool: parallel_for over [0, n) split across persistent workers. The calling
// thread takes part, so threads == 1 runs inline with no synchronisation at all.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace retnet {

// A non-owning reference to a callable (no allocation, unlike std::function with big captures):
// parallel_for runs in every decode step, which must not touch the heap.
class RangeFn {
 public:
  template <class F>
  RangeFn(const F& f) : obj_(&f), call_([](const void* o, int64_t b, int64_t e, int t) { (*static_cast<const F*>(o))(b, e, t); }) {}
  void operator()(int64_t b, int64_t e, int t) const { call_(obj_, b, e, t); }

 private:
  const void* obj_;
  void (*call_)(const void*, int64_t, int64_t, int);
};

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(begin, end, thread_index) over contiguous blocks of [0, n); static split, one block per thread.
  void parallel_for(int64_t n, RangeFn fn);

 private:
  void worker(int index);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  bool stop_ = false;
};

}  // namespace retnet
