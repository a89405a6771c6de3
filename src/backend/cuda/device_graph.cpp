// CUDA graphs (see device_graph.hpp): the runtime's stream capture, or the SIMT emulator's.
#include "backend/cuda/device_graph.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <exception>

#if !defined(RETNET_SIMT)
#include <cuda_runtime.h>
#endif

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace gpu {

Graph& Graph::operator=(Graph&& o) noexcept {
  if (this != &o) {
    reset();
    exec_ = o.exec_;
    o.exec_ = nullptr;
  }
  return *this;
}

#if defined(RETNET_SIMT)

void Graph::launch(cudaStream_t) {
  static_cast<const simt::Graph*>(exec_)->replay();
  RETNET_CUDA_CHECK(cudaGetLastError());  // a launch-configuration error of a replayed kernel
}
void Graph::reset() {
  delete static_cast<simt::Graph*>(exec_);
  exec_ = nullptr;
}
void begin_capture(cudaStream_t) {
  try {
    simt::begin_capture();
  } catch (const std::exception& e) {
    fail("begin_capture", e.what(), __FILE__, __LINE__);
  }
}
Graph end_capture(cudaStream_t) {
  Graph g;
  try {
    g.exec_ = simt::end_capture().release();
  } catch (const std::exception& e) {
    fail("end_capture", e.what(), __FILE__, __LINE__);
  }
  return g;
}
void abort_capture(cudaStream_t) noexcept {
  if (simt::capturing()) simt::end_capture().reset();
  cudaGetLastError();
}

#else  // real device

void Graph::launch(cudaStream_t s) { RETNET_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), s)); }
void Graph::reset() {
  if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
  exec_ = nullptr;
}
void begin_capture(cudaStream_t s) {
  // Thread-local: forbidden calls (cudaMalloc, synchronisation, ...) fail when this thread makes them,
  // while sessions on other threads keep allocating freely.
  RETNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
}
Graph end_capture(cudaStream_t s) {
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(s, &graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    fail("cudaStreamEndCapture", cudaGetErrorString(e), __FILE__, __LINE__);
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is independent of it
  if (ie != cudaSuccess) {
    cudaGetLastError();
    fail("cudaGraphInstantiate", cudaGetErrorString(ie), __FILE__, __LINE__);
  }
  Graph g;
  g.exec_ = exec;
  return g;
}
void abort_capture(cudaStream_t s) noexcept {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    // An invalidated capture must still be ended before the stream can be used again.
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
  }
  cudaGetLastError();
}

#endif

}  // namespace gpu
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
