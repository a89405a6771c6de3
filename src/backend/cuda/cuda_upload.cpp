// Weight upload of the CUDA backend: each weight is copied once into its own device allocation,
// streamed through two pinned chunks used in turn, so that the host fills one chunk (reading — and
// paging in — the mapped checkpoint) while the copy engine moves the other. Copies are asynchronous on
// the model backend's stream; finish_uploads() waits for the last ones and frees the pinned memory.
// Every weight type is copied as its bytes (WeightRef::bytes(): rows · row_bytes from the type traits),
// so block-quantized matrices arrive as their blocks, which the kernels read as such (quant.cuh).
#include "backend/cuda/cuda_backend.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <algorithm>
#include <cstring>

#include "retnet/error.hpp"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

WeightRef CudaBackend::upload(const WeightRef& host, FnRef<void(uint64_t)> on_bytes) {
  if (!host.data) return host;
  refuse_while_capturing("uploading a weight");
  const size_t bytes = host.bytes();
  auto* dev = static_cast<unsigned char*>(gpu::malloc_device(bytes));
  try {
    for (int i = 0; i < 2; ++i) {  // once per series of uploads (finish_uploads frees them)
      if (!pinned_[i]) pinned_[i] = gpu::malloc_pinned(opt_.upload_chunk);
      if (!pinned_free_[i]) pinned_free_[i] = std::make_unique<gpu::Event>();
    }
    const auto* src = static_cast<const unsigned char*>(host.data);
    for (size_t off = 0; off < bytes; off += opt_.upload_chunk) {
      const size_t n = std::min(opt_.upload_chunk, bytes - off);
      const int b = next_pinned_;
      next_pinned_ ^= 1;
      pinned_free_[b]->wait();  // the copy that last read this chunk (never recorded: returns at once)
      std::memcpy(pinned_[b], src + off, n);
      gpu::copy_h2d(dev + off, pinned_[b], n, stream_);
      pinned_free_[b]->record(stream_);
      if (on_bytes) on_bytes(n);  // may throw to cancel
    }
  } catch (...) {
    // Copies into `dev` may still be in flight: wait for them before freeing it.
    try {
      gpu::sync_stream(stream_);
    } catch (...) {
      // the original error is the one to report
    }
    gpu::free_device(dev);
    throw;
  }
  uploads_.push_back(dev);
  WeightRef d = host;
  d.data = dev;
  return d;
}

void* CudaBackend::upload_constant(const void* host, size_t bytes) {
  refuse_while_capturing("uploading a per-model constant");
  // cudaMalloc's alignment (256 bytes) suits any scalar type. From pageable memory the copy is staged
  // before copy_h2d returns; it is done on this stream by finish_uploads(), before any session runs.
  void* dev = gpu::malloc_device(std::max<size_t>(bytes, 1));
  if (bytes) {
    try {
      gpu::copy_h2d(dev, host, bytes, stream_);
    } catch (...) {
      gpu::free_device(dev);
      throw;
    }
  }
  return dev;
}

void CudaBackend::release_constant(void* p) { gpu::free_device(p); }

void CudaBackend::finish_uploads() {
  gpu::sync_stream(stream_);
  for (int i = 0; i < 2; ++i) {
    gpu::free_pinned(pinned_[i]);
    pinned_[i] = nullptr;
    pinned_free_[i].reset();
  }
  next_pinned_ = 0;
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
