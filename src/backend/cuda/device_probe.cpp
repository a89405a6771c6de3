// The CUDA half of include/retnet/system.hpp: what `retnet bench --device cuda` computes its rooflines
// from, measured on the device. Without CUDA (or in the emulated test library, which must not define
// these a second time) there is no device: an empty name and zero rates.
#include "retnet/system.hpp"

#if !defined(RETNET_SIMT)

#if defined(RETNET_WITH_CUDA)
#include <cuda_runtime.h>

#include <algorithm>
#include <exception>

#include "backend/cuda/device_runtime.hpp"
#endif

namespace retnet {

#if defined(RETNET_WITH_CUDA)

namespace {

// Best time in seconds of `reps` runs of `work` on stream s (one warm-up first), timed with events;
// 0 when timing fails (the probe then reports no device rather than throwing).
template <class F>
double best_seconds(cudaStream_t s, int reps, const F& work) {
  cudaEvent_t a = nullptr, b = nullptr;
  double best = 0;
  try {
    if (cudaEventCreate(&a) == cudaSuccess && cudaEventCreate(&b) == cudaSuccess) {
      work();
      for (int r = 0; r < std::max(1, reps); ++r) {
        float ms = 0;
        if (cudaEventRecord(a, s) != cudaSuccess) break;
        work();
        if (cudaEventRecord(b, s) != cudaSuccess || cudaEventSynchronize(b) != cudaSuccess ||
            cudaEventElapsedTime(&ms, a, b) != cudaSuccess) {
          best = 0;
          break;
        }
        const double sec = double(ms) / 1e3;
        if (best == 0 || sec < best) best = sec;
      }
    }
  } catch (const std::exception&) {
    best = 0;  // work() failed (it throws retnet::Error): no figure, and the events are still freed
  }
  if (a) cudaEventDestroy(a);
  if (b) cudaEventDestroy(b);
  cudaGetLastError();
  return best;
}

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) : p(gpu::malloc_device(bytes)) {}
  ~DeviceBuffer() { gpu::free_device(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Stream {
  cudaStream_t s = gpu::create_stream();
  ~Stream() {
    cudaStreamSynchronize(s);
    gpu::destroy_stream(s);
  }
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

}  // namespace

std::string cuda_device_name() { return gpu::device_count() > 0 ? gpu::device_name() : std::string(); }

double measure_cuda_bandwidth(size_t bytes, int reps) {
  if (gpu::device_count() <= 0 || bytes == 0) return 0;
  try {
    DeviceBuffer src(bytes), dst(bytes);
    Stream st;
    gpu::zero_device(src.p, bytes, st.s);
    const double sec = best_seconds(st.s, reps, [&] { gpu::copy_d2d(dst.p, src.p, bytes, st.s); });
    return sec > 0 ? 2.0 * double(bytes) / sec : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

double measure_cuda_sgemm_flops(int n, int reps) {
  if (gpu::device_count() <= 0 || n <= 0) return 0;
  try {
    const size_t bytes = size_t(n) * size_t(n) * sizeof(float);
    DeviceBuffer x(bytes), w(bytes), y(bytes);
    Stream st;
    gpu::zero_device(x.p, bytes, st.s);
    gpu::zero_device(w.p, bytes, st.s);
    gpu::Blas blas(st.s);  // destroyed before the stream
    const double sec = best_seconds(st.s, reps, [&] {
      blas.sgemm_xwt(static_cast<const float*>(x.p), n, n, static_cast<const float*>(w.p), n, static_cast<float*>(y.p), n);
    });
    return sec > 0 ? 2.0 * double(n) * double(n) * double(n) / sec : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

#else  // no CUDA in this build

std::string cuda_device_name() { return {}; }
double measure_cuda_bandwidth(size_t, int) { return 0; }
double measure_cuda_sgemm_flops(int, int) { return 0; }

#endif

}  // namespace retnet

#endif
