// Decode steps of the CUDA backend: the step-input mirror and CUDA-graph capture.
//
// Everything a decode step reads that changes from step to step — token ids, positions, 1/ρ, the
// state pointers of the sessions in the batch — is written by the Session into one pinned host block
// (step_inputs) and copied to its fixed device twin by one asynchronous copy (upload_step_inputs); ops
// given addresses inside the block read the twin (stage()). What remains in the ops' arguments is fixed
// for a given key (batch size) as long as no buffer of this backend moves, so the ops of a key are:
//   1. run plainly once (lazy allocations — cuBLAS handle, staging growth — happen here);
//   2. captured into a graph on the next step (thread-local capture mode) and launched;
//   3. replayed with one cudaGraphLaunch per step from then on.
// A buffer moving (alloc, release, staging growth; e.g. a longer prefill grows the workspace) bumps
// layout_, and every graph recorded before is dropped and re-captured (after a plain step) when its
// key comes back. A capture that fails is logged once; the backend then launches op by op.
#include "common/logger.hpp"

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_backend.hpp"
#include "retnet/error.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

void* CudaBackend::step_inputs(size_t bytes) {
  refuse_while_capturing("writing the step inputs");
  step_copied_->wait();  // the last step's copy has read the block: it may be rewritten (or freed)
  if (bytes > step_cap_) {
    buffers_moved();
    gpu::free_pinned(step_host_);
    gpu::free_device(step_dev_);  // cudaFree waits for the kernels that may still read it
    step_host_ = step_dev_ = nullptr;
    step_cap_ = 0;
    const size_t cap = std::max<size_t>((bytes + 255) / 256 * 256, 4096);
    step_host_ = gpu::malloc_pinned(cap);
    step_dev_ = gpu::malloc_device(cap);
    step_cap_ = cap;
  }
  return step_host_;
}

void CudaBackend::upload_step_inputs(size_t bytes) {
  refuse_while_capturing("copying the step inputs");
  if (bytes > step_cap_) throw Error("cuda backend: step inputs of " + std::to_string(bytes) + " bytes exceed the block");
  // From pinned memory: asynchronous, ordered before the step's kernels on this stream.
  gpu::copy_h2d(step_dev_, step_host_, bytes, stream_);
  step_copied_->record(stream_);
}

void CudaBackend::run_step(uint64_t key, FnRef<void()> enqueue) {
  if (!opt_.graphs || graphs_failed_) {
    enqueue();
    ++stats_->plain;
    return;
  }
  StepGraph* g = nullptr;
  for (StepGraph& s : graphs_)
    if (s.last_use != 0 && s.key == key) g = &s;
  if (!g) {  // the least recently used slot (unused ones first)
    g = &*std::min_element(graphs_.begin(), graphs_.end(),
                           [](const StepGraph& a, const StepGraph& b) { return a.last_use < b.last_use; });
    if (g->graph) {
      gpu::sync_stream(stream_);  // its last launch may still run
      g->graph.reset();
    }
    g->key = key;
    g->layout = 0;
    g->warm = false;
  }
  g->last_use = ++clock_;
  if (g->layout != layout_) {  // a buffer the recorded ops use may have moved
    if (g->graph) {
      gpu::sync_stream(stream_);
      g->graph.reset();
    }
    g->warm = false;
  }
  if (g->graph) {
    g->graph.launch(stream_);
    ++stats_->replays;
    return;
  }
  if (!g->warm) {
    enqueue();
    g->warm = true;
    g->layout = layout_;  // after the step: what it allocated is in place for the capture
    ++stats_->plain;
    return;
  }
  capture_step(*g, enqueue);
}

void CudaBackend::capture_step(StepGraph& g, FnRef<void()> enqueue) {
  std::string why;
  auto note = [&why](const char* what) { why = what; };
  try {
    gpu::begin_capture(stream_);
  } catch (const std::exception& e) {
    note(e.what());
  }
  if (why.empty()) {
    capturing_ = true;
    try {
      enqueue();
    } catch (const std::exception& e) {
      note(e.what());
    } catch (...) {
      note("unknown exception");
    }
    capturing_ = false;
    if (why.empty()) {
      try {
        g.graph = gpu::end_capture(stream_);
      } catch (const std::exception& e) {
        note(e.what());
      }
    } else {
      gpu::abort_capture(stream_);
    }
  }
  if (!why.empty()) {
    // Nothing of the failed capture ran: the step is issued again, op by op, as from now on.
    graphs_failed_ = true;
    ++stats_->failures;
    lib_log().warn("cuda: capturing the decode step into a CUDA graph failed ({}); this session launches op by op", why);
    enqueue();
    ++stats_->plain;
    return;
  }
  ++stats_->captures;
  g.layout = layout_;
  g.graph.launch(stream_);
  ++stats_->replays;
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
