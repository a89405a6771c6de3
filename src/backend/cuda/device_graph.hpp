// CUDA graphs for the CUDA backend: capture the work a thread issues on a stream, then replay it with
// one launch. Real build: cudaStreamBeginCapture in thread-local mode (another thread's sessions may
// allocate meanwhile; this thread's forbidden calls fail and invalidate the capture), instantiated
// once. Emulated build (RETNET_SIMT): the SIMT emulator records the same work and replays it
// (tests/simt/simt.hpp), so the capture logic runs in CI too.
#pragma once

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include "backend/cuda/device_runtime.hpp"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace gpu {

// An instantiated graph (cudaGraphExec_t), replayable on any stream of its device.
class Graph {
 public:
  Graph() = default;
  ~Graph() { reset(); }
  Graph(Graph&& o) noexcept : exec_(o.exec_) { o.exec_ = nullptr; }
  Graph& operator=(Graph&& o) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  explicit operator bool() const { return exec_ != nullptr; }
  void launch(cudaStream_t s);  // asynchronous on s, like the work it recorded
  void reset();                 // destroys it; the caller has waited for its last launch

 private:
  friend Graph end_capture(cudaStream_t s);
  void* exec_ = nullptr;
};

void begin_capture(cudaStream_t s);
// Ends the capture and instantiates what it recorded; throws Error naming why when the capture was
// invalidated (a forbidden call during it) or cannot be instantiated.
Graph end_capture(cudaStream_t s);
// Ends a capture whose work failed part-way, discarding it; leaves no error pending. Never throws.
void abort_capture(cudaStream_t s) noexcept;

}  // namespace gpu
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
