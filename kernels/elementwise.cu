// Launchers of the elementwise kernels (device code in elementwise.cuh).
#include "elementwise.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

cudaError_t launch_embed(const void* table, DType t, const int32_t* ids, int64_t T, int64_t D, float scale, float* out,
                         cudaStream_t stream) {
  if (T <= 0 || D <= 0) return cudaSuccess;
  const dim3 grid = dim3(unsigned(T)), block = dim3(D >= 256 ? 256 : 128);
  return visit_dtype(
      t,
      [&](auto d) {
        constexpr DType W = decltype(d)::value;
        // Block types: rows hold whole blocks (D a multiple of the block), each element dequantized.
        if (D % DTypeConst<W>::block_elems != 0) return cudaErrorInvalidValue;
        const auto kernel = &dev::embed_kernel<W>;
        RETNET_LAUNCH(kernel, grid, block, 0, stream, table, ids, D, scale, out);
        return cudaGetLastError();
      },
      [] { return cudaErrorInvalidValue; });
}

cudaError_t launch_widen(const void* src, DType t, size_t n, float* dst, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const dim3 grid = dim3(dev::grid_for(n, 256)), block = dim3(256);
  return visit_dtype(
      t,
      [&](auto d) {
        constexpr DType W = decltype(d)::value;
        // Block types: n whole blocks from a block start (a run of whole rows), each element dequantized.
        if (n % size_t(DTypeConst<W>::block_elems) != 0) return cudaErrorInvalidValue;
        const auto kernel = &dev::widen_kernel<W>;
        RETNET_LAUNCH(kernel, grid, block, 0, stream, src, n, dst);
        return cudaGetLastError();
      },
      [] { return cudaErrorInvalidValue; });
}

cudaError_t launch_glu(const float* a, const float* b, float* out, size_t n, Activation act, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const dim3 grid = dim3(dev::grid_for(n, 256)), block = dim3(256);
  switch (act) {
    case Activation::Silu: {
      const auto kernel = &dev::glu_kernel<Activation::Silu>;
      RETNET_LAUNCH(kernel, grid, block, 0, stream, a, b, out, n);
      return cudaGetLastError();
    }
    case Activation::Gelu: {
      const auto kernel = &dev::glu_kernel<Activation::Gelu>;
      RETNET_LAUNCH(kernel, grid, block, 0, stream, a, b, out, n);
      return cudaGetLastError();
    }
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_residual(float* x, const float* y, float alpha, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const auto kernel = &dev::residual_kernel;
  RETNET_LAUNCH(kernel, dim3(dev::grid_for(n, 256)), dim3(256), 0, stream, x, y, alpha, n);
  return cudaGetLastError();
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
