// Launcher of chunkwise retention (device code and the algorithm in retention_chunk.cuh).
#include "retention_chunk.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

namespace {

struct ChunkLayout {
  int64_t C = 1, nch = 0;
  size_t zs = 0, rsq = 0, cross = 0, sC = 0, total = 0;  // byte offsets into the workspace
};

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

ChunkLayout layout(int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t chunk, RetentionNorm norm) {
  ChunkLayout l;
  l.C = chunk < T ? chunk : T;  // C = max(1, min(chunk, T)), as retention_chunk_head
  if (l.C < 1) l.C = 1;
  l.nch = T > 0 ? (T + l.C - 1) / l.C : 0;
  const bool ts = norm != RetentionNorm::None;
  size_t off = 0;
  l.zs = off;
  off += align256(size_t(l.nch) * size_t(H * dk * dv) * sizeof(float));
  l.rsq = off;
  if (ts) off += align256(size_t(H * l.C) * sizeof(float));
  l.cross = off;
  if (ts) off += align256(size_t(l.nch * H) * sizeof(float));
  l.sC = off;
  if (ts) off += align256(size_t(H) * sizeof(float));
  l.total = off;
  return l;
}

}  // namespace

size_t retention_chunk_workspace_bytes(int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t chunk,
                                       RetentionNorm norm) {
  return layout(T, H, dk, dv, chunk, norm).total;
}

cudaError_t launch_retention_chunk(const float* q, const float* k, const float* v, float* state, float* out, int64_t T,
                                   int64_t H, int64_t dk, int64_t dv, int64_t chunk, const float* log_decay,
                                   RetentionNorm norm, void* workspace, cudaStream_t stream) {
  if (T <= 0 || H <= 0 || dk <= 0 || dv <= 0) return cudaSuccess;
  if (H > 65535 || !workspace) return cudaErrorInvalidValue;
  const ChunkLayout l = layout(T, H, dk, dv, chunk, norm);
  auto* ws = static_cast<unsigned char*>(workspace);
  dev::ChunkParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.state = state;
  p.out = out;
  p.T = T;
  p.H = H;
  p.dk = dk;
  p.dv = dv;
  p.C = l.C;
  p.nch = l.nch;
  p.log_decay = log_decay;
  p.zs = reinterpret_cast<float*>(ws + l.zs);
  p.ts = norm != RetentionNorm::None;
  p.rsq = p.ts ? reinterpret_cast<float*>(ws + l.rsq) : nullptr;
  p.cross = p.ts ? reinterpret_cast<float*>(ws + l.cross) : nullptr;
  p.sC = p.ts ? reinterpret_cast<float*>(ws + l.sC) : nullptr;
  p.inner_max = norm == RetentionNorm::TorchscaleParallel ? 5e4f : INFINITY;

  const int64_t kv_blocks = l.nch * H;
  const int64_t row_tiles = (l.C + dev::kOutRows - 1) / dev::kOutRows;
  const int64_t out_blocks_x = row_tiles * l.nch;
  const int64_t dk_tiles = (dk + dev::kKvTile - 1) / dev::kKvTile, dv_tiles = (dv + dev::kKvTile - 1) / dev::kKvTile;
  if (kv_blocks > 0x7fffffff || out_blocks_x > 0x7fffffff || dk_tiles > 65535 || dv_tiles > 65535 ||
      l.nch > 0x7fffffff)
    return cudaErrorInvalidValue;

  {
    const auto kernel = &dev::chunk_kv_kernel;
    const dim3 grid = dim3(unsigned(kv_blocks), unsigned(dk_tiles), unsigned(dv_tiles));
    RETNET_LAUNCH(kernel, grid, dim3(256), 0, stream, p);
  }
  {
    const auto kernel = &dev::chunk_scan_kernel;
    const int64_t n = H * dk * dv;
    RETNET_LAUNCH(kernel, dim3(unsigned((n + 255) / 256)), dim3(256), 0, stream, p);
  }
  if (p.ts) {
    const auto rsq = &dev::chunk_rsq_kernel;
    RETNET_LAUNCH(rsq, dim3(unsigned((l.C + 255) / 256), unsigned(H)), dim3(256), 0, stream, p);
    const auto cross = &dev::chunk_cross_kernel;
    RETNET_LAUNCH(cross, dim3(unsigned(l.nch), unsigned(H)), dim3(256), 0, stream, p);
  }
  {
    const auto kernel = &dev::chunk_out_kernel;
    const dim3 grid = dim3(unsigned(out_blocks_x), unsigned((dv + dev::kOutCols - 1) / dev::kOutCols), unsigned(H));
    RETNET_LAUNCH(kernel, grid, dim3(256), 0, stream, p);
  }
  return cudaGetLastError();
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
