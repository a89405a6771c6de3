// Launcher of the decode GEMV (device code in gemv.cuh; block-quantized weights: gemv_quant.cuh).
#include "gemv.cuh"
#include "gemv_quant.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

namespace {

template <DType W, int T>
void gemv_t(const float* x, int64_t in, const void* w, int64_t rows, float* y, int64_t ldy, cudaStream_t stream) {
  const dim3 grid = dim3(unsigned((rows + dev::kGemvWarps - 1) / dev::kGemvWarps));
  if constexpr (DTypeConst<W>::block_elems > 1) {
    const auto kernel = &dev::gemv_quant_kernel<W, T>;
    RETNET_LAUNCH(kernel, grid, dim3(dev::kGemvWarps * 32), 0, stream, x, in, w, rows, y, ldy);
  } else {
    const auto kernel = &dev::gemv_kernel<W, T>;
    RETNET_LAUNCH(kernel, grid, dim3(dev::kGemvWarps * 32), 0, stream, x, in, w, rows, y, ldy);
  }
}

template <DType W>
void gemv_w(const float* x, int64_t T, int64_t in, const void* w, int64_t rows, float* y, int64_t ldy,
            cudaStream_t stream) {
  switch (T) {
    case 1: gemv_t<W, 1>(x, in, w, rows, y, ldy, stream); break;
    case 2: gemv_t<W, 2>(x, in, w, rows, y, ldy, stream); break;
    case 3: gemv_t<W, 3>(x, in, w, rows, y, ldy, stream); break;
    case 4: gemv_t<W, 4>(x, in, w, rows, y, ldy, stream); break;
    case 5: gemv_t<W, 5>(x, in, w, rows, y, ldy, stream); break;
    case 6: gemv_t<W, 6>(x, in, w, rows, y, ldy, stream); break;
    case 7: gemv_t<W, 7>(x, in, w, rows, y, ldy, stream); break;
    default: gemv_t<W, 8>(x, in, w, rows, y, ldy, stream); break;
  }
}

}  // namespace

cudaError_t launch_gemv(const float* x, int64_t T, int64_t in, const void* w, DType wt, int64_t rows, float* y,
                        int64_t ldy, cudaStream_t stream) {
  if (T <= 0 || rows <= 0) return cudaSuccess;
  if (T > kGemvMaxRows || in <= 0) return cudaErrorInvalidValue;
  return visit_dtype(
      wt,
      [&](auto d) {
        constexpr DType W = decltype(d)::value;
        if (in % DTypeConst<W>::block_elems != 0) return cudaErrorInvalidValue;  // rows of whole blocks
        gemv_w<W>(x, T, in, w, rows, y, ldy, stream);
        return cudaGetLastError();
      },
      [] { return cudaErrorInvalidValue; });
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
