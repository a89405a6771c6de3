// The CPU backend: memory, and each op split over the thread pool. The arithmetic lives in the
// single-threaded kernels of kernels_cpu.hpp, in files named after their CUDA twins.
#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/state_f16.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/quant_gemm.hpp"
#include "common/limits.hpp"
#include "common/saturating.hpp"
#include "retnet/error.hpp"

extern "C" void openblas_set_num_threads(int);

namespace retnet {

namespace {
// Below this many rows a product streams the weights once per row (GEMV); above it, sgemm panels.
constexpr int64_t kGemvMaxRows = 8;
static_assert(kGemvMaxRows >= kDecodeBatchRows, "decode_batch's parts must stay GEMVs");
// The quantized activations' buffer start (quant_gemv.hpp: 64 keeps the 32-byte code loads within
// cache lines).
constexpr size_t kQuantActsAlign = 64;
// Output rows per work item. GEMV: about kGemvPanelBytes of weights, small enough for load balance
// (weights stream once either way) and long enough for the prefetchers (short panels of short rows
// stream measurably slower; docs/benchmarks.md). GEMM: large, because every sgemm
// call re-packs the [T, in] activations; 256 rows keeps that repacking under ~10% of the
// arithmetic while still giving each thread several items.
constexpr int64_t kGemvPanelBytes = 192 << 10;
constexpr int64_t kGemmPanelRows = 256;
// bf16-activation GEMM (opt-in): x is rounded once per matmul, not re-packed per panel, so panels can
// be small enough to balance: 768-row matrices (125m's o and FFN down) give 2 threads 6 panels, not 3.
constexpr int64_t kBf16PanelRows = 128;
// Prefill on block-typed weights: the integer GEMM (quant_gemm.hpp) on activations quantized once per
// matmul, at most kQuantMaxRows rows at a time (a prefill block: the buffer the memory plan counts;
// longer products are split, which changes no result: rows are independent). Its panels are small,
// because nothing is re-packed per panel: 768-row matrices give 2 threads 12 of them.
constexpr int64_t kQuantMaxRows = kPrefillBlockTokens;
constexpr int64_t kQuantGemmPanelRows = 64;
// Whether prefill on these weights runs the integer GEMM rather than dequantized panels for sgemm.
bool quant_gemm(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K; }

// What alloc() asks aligned_alloc for: n floats rounded up to 64 bytes, plus 64 (saturating).
uint64_t alloc_request_bytes(uint64_t n_floats) {
  const uint64_t bytes = sat_mul(n_floats, sizeof(float));
  return bytes > std::numeric_limits<uint64_t>::max() - 128 ? std::numeric_limits<uint64_t>::max()
                                                            : (bytes + 63) / 64 * 64 + 64;
}
}  // namespace

CpuBackend::CpuBackend(int threads) : pool_(threads), scratch_(size_t(pool_.size())), qpack_(size_t(pool_.size())) {
  // We parallelise across weight panels ourselves; nested BLAS threads would oversubscribe.
  openblas_set_num_threads(1);
  const char* off = std::getenv("RETNET_NO_QUANT_GEMM");
  quant_gemm_ = !(off && *off && std::strcmp(off, "0") != 0);
}

float* CpuBackend::alloc(size_t n) {
  void* p = std::aligned_alloc(64, size_t(alloc_request_bytes(n)));
  if (!p) throw Error("cpu backend: out of memory allocating " + std::to_string(n * 4) + " bytes");
  std::memset(p, 0, n * sizeof(float));
  return static_cast<float*>(p);
}
void CpuBackend::release(float* p) { std::free(p); }
void CpuBackend::to_host(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * 4); }
void CpuBackend::from_host(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * 4); }
void CpuBackend::copy(float* dst, const float* src, size_t n) { std::memmove(dst, src, n * 4); }
void CpuBackend::zero(float* dst, size_t n) { std::memset(dst, 0, n * 4); }

void* CpuBackend::upload_constant(const void* host, size_t bytes) {
  // alloc()'s alignment (64 bytes, whole lines): any scalar type, fp64 θ included.
  void* p =
      bytes <= std::numeric_limits<size_t>::max() - 128 ? std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64) : nullptr;
  if (!p) throw Error("cpu backend: out of memory allocating " + std::to_string(bytes) + " bytes");
  if (bytes) std::memcpy(p, host, bytes);
  return p;
}
void CpuBackend::release_constant(void* p) { std::free(p); }

uint64_t CpuBackend::host_alloc_bytes(uint64_t n_floats) const { return alloc_request_bytes(n_floats); }

uint64_t CpuBackend::host_scratch_bytes(const ScratchShape& s) const {
  auto u = [](int64_t x) { return x > 0 ? uint64_t(x) : uint64_t(0); };
  // Per pool thread, the largest of: a weight panel widened to fp32 (gemm_rows; kGemmPanelRows rows,
  // for products of more than kGemvMaxRows rows), the chunk tables of a whole head's columns
  // (retention_chunk_cols), theta_shift's sin/cos.
  const int64_t C = std::max<int64_t>(1, s.chunk);
  const uint64_t floats =
      std::max({sat_mul(uint64_t(kGemmPanelRows), u(s.widest_input)),
                uint64_t(cpu::retention_chunk_scratch_floats(C, std::max<int64_t>(0, s.head_dv))), u(s.head_dk)});
  // Each thread's scratch is a std::vector grown by resize(), whose capacity can reach twice the
  // largest request (libstdc++ doubles when the new size is under twice the old one). Plus the
  // quantized activations of a matmul on block-typed weights (one buffer, all threads): up to
  // kQuantMaxRows rows (prefill's integer GEMM; decode quantizes at most kGemvMaxRows).
  static_assert(kQuantMaxRows >= kGemvMaxRows);
  const uint64_t qacts = s.block_weights && s.widest_input > 0 && s.widest_input % cpu::kQActBlock == 0
                             ? uint64_t(cpu::quant_acts_bytes(kQuantMaxRows, s.widest_input) + kQuantActsAlign)
                             : 0;
  // And per thread a repacked panel of kQuantGemmPanelRows weight rows for the integer GEMM (grown
  // to its final size at once: every panel of a width needs the same).
  const uint64_t qpack = s.block_weights && s.widest_input > 0 && s.widest_input % cpu::kQActBlock == 0
                             ? uint64_t(cpu::quant_pack_bytes(kQuantGemmPanelRows, s.widest_input) + 64)
                             : 0;
  return sat_add(sat_add(sat_mul(sat_mul(uint64_t(pool_.size()), floats), 2 * sizeof(float)), sat_mul(2, qacts)),
                 sat_mul(uint64_t(pool_.size()), sat_mul(2, qpack)));
}

WeightRef CpuBackend::upload(const WeightRef& host, FnRef<void(uint64_t)> on_bytes) {
  // The weights are used in place from the mapping: touch every page once now, so that the first
  // token does not pay for page faults and a large model shows load progress.
  constexpr size_t kPart = size_t(16) << 20, kPage = 4096;
  const auto* p = static_cast<const volatile uint8_t*>(host.data);
  const size_t n = host.data ? host.bytes() : 0;
  uint8_t sink = 0;
  for (size_t off = 0; off < n; off += kPart) {
    const size_t end = std::min(n, off + kPart);
    for (size_t i = off; i < end; i += kPage) sink = uint8_t(sink + p[i]);
    if (on_bytes) on_bytes(end - off);
  }
  touched_ += sink;  // keeps the reads
  return host;
}

void CpuBackend::embed(const WeightRef& table, const int32_t* ids, int64_t T, float scale, float* out) {
  for (int64_t t = 0; t < T; ++t) cpu::embed_row(table, ids[t], scale, out + t * table.cols);
}

void CpuBackend::rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) {
  pool_.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) cpu::rms_norm_row(x + t * D, D, w, eps, y + t * D);
  });
}

void CpuBackend::matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) {
  // Split the concatenated output rows of all jobs into panels; every panel is independent.
  constexpr size_t kMaxJobs = 8;  // fixed-size table: no allocation per call
  if (jobs.size() > kMaxJobs) {
    for (size_t j = 0; j < jobs.size(); j += kMaxJobs) matmul(x, T, in, jobs.subspan(j, std::min(kMaxJobs, jobs.size() - j)));
    return;
  }
  const bool gemv = T <= kGemvMaxRows;
  // Products on quantized activations: every block-typed job of a decode, those of a prefill whose
  // type has the integer GEMM.
  const bool qgemm = quant_gemm_;
  auto on_qacts = [gemv, qgemm](const MatmulJob& j) {
    return dtype_is_block(j.w->dtype) && (gemv || (qgemm && quant_gemm(j.w->dtype)));
  };
  const bool any_qacts = std::any_of(jobs.begin(), jobs.end(), on_qacts);
  if (any_qacts && T > kQuantMaxRows) {  // bounded buffer: kQuantMaxRows rows at a time
    MatmulJob part[kMaxJobs];
    for (int64_t t0 = 0; t0 < T; t0 += kQuantMaxRows) {
      for (size_t j = 0; j < jobs.size(); ++j) part[j] = {jobs[j].w, jobs[j].y + t0 * jobs[j].w->rows};
      matmul(x + t0 * in, std::min(kQuantMaxRows, T - t0), in, std::span<const MatmulJob>(part, jobs.size()));
    }
    return;
  }
  // Opt-in bf16 activations (GEMM only): x rounded to bf16 pairs once here, shared by every panel.
  bool bf16 = false;
  if (!gemv && bf16_act_)
    for (const MatmulJob& j : jobs) bf16 = bf16 || j.w->dtype == DType::BF16;
  if (bf16) {
    const int64_t kp = (in + 1) / 2;
    if (xb_.size() < size_t(T * kp)) xb_.resize(size_t(T * kp));
    pool_.parallel_for(T, [&](int64_t b, int64_t e, int) { cpu::round_rows_bf16(x + b * in, e - b, in, xb_.data() + b * kp); });
  }
  // Block-typed weights: x quantized to int8 blocks once here, shared by every panel and job.
  cpu::QuantActs qa;
  if (any_qacts) {
    const size_t need = cpu::quant_acts_bytes(T, in) + kQuantActsAlign;
    if (qacts_.size() < need) qacts_.resize(need);
    const auto at = reinterpret_cast<uintptr_t>(qacts_.data());
    qa = cpu::quantize_acts(x, T, in, qacts_.data() + ((kQuantActsAlign - at % kQuantActsAlign) % kQuantActsAlign));
  }
  int64_t kPanelRows = bf16 ? kBf16PanelRows : kGemmPanelRows;
  if (gemv) {
    size_t row_bytes = 1;
    for (const MatmulJob& j : jobs) row_bytes = std::max(row_bytes, size_t(dtype_row_bytes(j.w->dtype, in)));
    kPanelRows = std::max<int64_t>(16, int64_t(kGemvPanelBytes / row_bytes) / 16 * 16);
  } else if (std::all_of(jobs.begin(), jobs.end(), on_qacts)) {
    kPanelRows = kQuantGemmPanelRows;
  } else if (pool_.size() == 1 && !bf16 &&
             std::all_of(jobs.begin(), jobs.end(), [](const MatmulJob& j) { return j.w->dtype == DType::F32; })) {
    // One thread, weights used in place: panels would only re-pack the activations once more each
    // (no balance to gain); whole matrices ran 125m pp512 f32 ~4% faster. (F16/BF16 panels are
    // widened into scratch first, which must stay cache-sized.)
    kPanelRows = std::numeric_limits<int32_t>::max();
  }
  int64_t first_panel[kMaxJobs + 1] = {0};
  for (size_t j = 0; j < jobs.size(); ++j)
    first_panel[j + 1] = first_panel[j] + (jobs[j].w->rows + kPanelRows - 1) / kPanelRows;
  const int64_t n_panels = first_panel[jobs.size()];
  // Panels are handed out one at a time from a shared counter rather than split statically: on a
  // shared machine one core often runs slower for a while, and with a static split the other
  // then waits at the join (measured as ~5% of a 1.3B decode spent in sched_yield).
  std::atomic<int64_t> next{0};
  pool_.parallel_for(std::min<int64_t>(n_panels, pool_.size()), [&](int64_t, int64_t, int tid) {
    for (int64_t p = next.fetch_add(1, std::memory_order_relaxed); p < n_panels;
         p = next.fetch_add(1, std::memory_order_relaxed)) {
      size_t j = 0;
      while (p >= first_panel[j + 1]) ++j;
      const WeightRef& w = *jobs[j].w;
      const int64_t r0 = (p - first_panel[j]) * kPanelRows;
      const int64_t r1 = std::min(w.rows, r0 + kPanelRows);
      float* y = jobs[j].y + r0;
      if (gemv && dtype_is_block(w.dtype)) cpu::gemv_rows_quant(qa, w, r0, r1, y, w.rows);
      else if (gemv) cpu::gemv_rows(x, T, in, w, r0, r1, y, w.rows, scratch_[size_t(tid)]);
      else if (on_qacts(jobs[j]))  // at most kQuantGemmPanelRows rows per pack (the planned scratch)
        for (int64_t s = r0; s < r1; s += kQuantGemmPanelRows)
          cpu::gemm_rows_quant(qa, w, s, std::min(r1, s + kQuantGemmPanelRows), y + (s - r0), w.rows,
                               qpack_[size_t(tid)]);
      else if (bf16 && w.dtype == DType::BF16)
        cpu::gemm_bf16_rows(xb_.data(), T, in, w, r0, r1, y, w.rows, pack_[size_t(tid)]);
      else
        cpu::gemm_rows(x, T, in, w, r0, r1, y, w.rows, scratch_[size_t(tid)]);
    }
  });
}

bool CpuBackend::set_bf16_activations(bool on) {
  bf16_act_ = on && cpu::bf16_gemm_supported();
  if (bf16_act_ && pack_.size() != scratch_.size()) pack_.resize(scratch_.size());
  return bf16_act_;
}

void CpuBackend::theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos,
                             const float* theta32, const double* theta64, Pairing pairing, AngleMode angles,
                             float q_scale, float k_scale) {
  const int64_t half = dk / 2;
  pool_.parallel_for(T, [&](int64_t b, int64_t e, int tid) {
    std::vector<float>& cs = scratch_[size_t(tid)];
    if (cs.size() < size_t(2 * half)) cs.resize(size_t(2 * half));
    for (int64_t t = b; t < e; ++t)
      cpu::theta_shift_row(q + t * H * dk, k + t * H * dk, H, dk, pos[t], theta32, theta64, pairing, angles, q_scale,
                           k_scale, cs.data());
  });
}

void CpuBackend::retention_chunk(const RetentionChunkArgs& a) {
  if (a.T <= 0 || a.H <= 0) return;
  // Work items are (head, block of value columns): whole heads alone leave threads idle whenever H
  // is not a multiple of the thread count (125m: 3 heads on 2 threads ran as 2 + 1). Each block
  // recomputes the chunk's [C, C] scores, so blocks stay >= one column tile (128) wide.
  const int64_t P = threads();
  int64_t blocks = P / std::gcd(a.H, P);
  blocks = std::max<int64_t>(1, std::min(blocks, a.dv / cpu::kRetentionColTile));
  const int64_t C = std::max<int64_t>(1, std::min(a.chunk, a.T));
  cpu::ChunkNormParts parts;
  parts.blocks = blocks;
  parts.n_chunks = (a.T + C - 1) / C;
  const bool ts = a.norm != RetentionNorm::None;
  if (ts) {
    const size_t need = size_t(2 * a.H * a.T + a.H * blocks * parts.n_chunks);
    if (norm_parts_.size() < need) norm_parts_.resize(need);
    parts.r = norm_parts_.data();
    parts.inner = parts.r + a.H * a.T;
    parts.colmax = parts.inner + a.H * a.T;
  }
  // Boundaries on whole column tiles: retention_chunk_cols runs its products on the same tiles
  // whatever the split, so results do not depend on the thread count.
  auto edge = [&](int64_t j) {
    return j == blocks ? a.dv : a.dv * j / blocks / cpu::kRetentionColTile * cpu::kRetentionColTile;
  };
  for (int64_t j = 0; j < blocks; ++j)
    if (edge(j) % cpu::kRetentionColTile != 0 || edge(j + 1) <= edge(j))
      throw Error("retention_chunk: column block " + std::to_string(j) + " of " + std::to_string(blocks) +
                  " is empty or off the column tiles (dv " + std::to_string(a.dv) + ")");
  pool_.parallel_for(a.H * blocks, [&](int64_t b, int64_t e, int tid) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t h = i / blocks, blk = i % blocks;
      const int64_t c0 = edge(blk), c1 = edge(blk + 1);
      cpu::retention_chunk_cols(a, h, c0, c1, blk, parts, scratch_[size_t(tid)]);
    }
  });
  if (ts)
    pool_.parallel_for(a.T, [&](int64_t b, int64_t e, int) { cpu::retention_chunk_normalize(a, parts, b, e); });
}

void CpuBackend::widen_f16(float* dst, const void* src, size_t n) {
  cpu::widen_f16(static_cast<const uint16_t*>(src), dst, n);
}
void CpuBackend::narrow_f16(void* dst, const float* src, size_t n) {
  cpu::narrow_f16(src, static_cast<uint16_t*>(dst), n);
}

void CpuBackend::retention_step(const RetentionStepArgs& a) {
  // Work items are (row, head, block of state rows); a head-level split leaves threads idle whenever
  // B·H is not a multiple of the thread count (125m: 3 heads on 2 threads). Each block writes a
  // partial read-out [dv]; the parts are summed per (row, head) afterwards, in block order.
  const int64_t nb = (a.dk + cpu::kRetentionStepRows - 1) / cpu::kRetentionStepRows;
  const size_t need = size_t(a.B * a.H * nb * a.dv);
  if (step_parts_.size() < need) step_parts_.resize(need);  // grows once; later decode steps reuse it
  float* parts = step_parts_.data();                          // [B, H, nb, dv]
  pool_.parallel_for(a.B * a.H * nb, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t bh = i / nb, j0 = (i % nb) * cpu::kRetentionStepRows;
      const int64_t j1 = std::min(a.dk, j0 + cpu::kRetentionStepRows);
      if (a.state_f16) cpu::retention_step_rows_f16(a, bh / a.H, bh % a.H, j0, j1, parts + i * a.dv);
      else cpu::retention_step_rows(a, bh / a.H, bh % a.H, j0, j1, parts + i * a.dv);
    }
  });
  // The parts are still in cache; below a few batch rows one more fork-join would cost more than
  // the sums it spreads.
  auto reduce = [&](int64_t b, int64_t e, int) {
    for (int64_t bh = b; bh < e; ++bh) cpu::retention_step_reduce(a, bh / a.H, bh % a.H, parts + bh * nb * a.dv, nb);
  };
  if (need <= (size_t(1) << 16)) reduce(0, a.B * a.H, 0);
  else pool_.parallel_for(a.B * a.H, reduce);
}

void CpuBackend::group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                                 float eps) {
  pool_.parallel_for(T * H, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) cpu::group_norm_gate_row(o + i * dv, g ? g + i * dv : nullptr, dv, w, eps);
  });
}

void CpuBackend::glu(const float* a, const float* b, float* out, size_t n, Activation act) {
  pool_.parallel_for(int64_t(n), [&](int64_t s, int64_t e, int) { cpu::glu_range(a, b, out, s, e, act); });
}

void CpuBackend::residual(float* x, const float* y, float alpha, size_t n) { cpu::residual(x, y, alpha, n); }

}  // namespace retnet
