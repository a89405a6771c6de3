// The CPU backend: fp32 activations in host memory, weights used in place from the mapping.
#pragma once
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/thread_pool.hpp"

namespace retnet {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads);
  std::string name() const override { return "cpu"; }
  int threads() const override { return pool_.size(); }

  float* alloc(size_t n) override;
  void release(float* p) override;
  void to_host(float* dst, const float* src, size_t n) override;
  void from_host(float* dst, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;
  void zero(float* dst, size_t n) override;
  void widen_f16(float* dst, const void* src, size_t n) override;
  void narrow_f16(void* dst, const float* src, size_t n) override;
  WeightRef upload(const WeightRef& host, FnRef<void(uint64_t)> on_bytes) override;
  void* upload_constant(const void* host, size_t bytes) override;
  void release_constant(void* p) override;
  uint64_t host_alloc_bytes(uint64_t n_floats) const override;
  uint64_t host_scratch_bytes(const ScratchShape& shape) const override;

  void embed(const WeightRef& table, const int32_t* ids, int64_t T, float scale, float* out) override;
  void rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) override;
  void matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) override;
  bool set_bf16_activations(bool on) override;
  void theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos,
                   const float* theta32, const double* theta64, Pairing pairing, AngleMode angles,
                   float q_scale, float k_scale) override;
  void retention_chunk(const RetentionChunkArgs& a) override;
  void retention_step(const RetentionStepArgs& a) override;
  void group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                       float eps) override;
  void glu(const float* a, const float* b, float* out, size_t n, Activation act) override;
  void residual(float* x, const float* y, float alpha, size_t n) override;

 private:
  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;  // one per pool thread; grows, never shrinks
  std::vector<float> norm_parts_;            // retention_chunk's cpu::ChunkNormParts; grows, never shrinks
  std::vector<float> step_parts_;            // retention_step's partial read-outs [B, H, blocks, dv]
  unsigned touched_ = 0;                     // sum of the bytes upload() read (keeps those reads)
  // set_bf16_activations: GEMMs against BF16 weights use cpu::gemm_bf16_rows with x rounded once per
  // matmul into xb_ [T, (in+1)/2] bf16 pairs, weight panels packed into pack_ (one per pool thread).
  bool bf16_act_ = false;
  // Prefill on q8_0/q4_0/q4_k weights by the integer GEMM (default) or, with RETNET_NO_QUANT_GEMM set
  // when the backend is made, by panels dequantized to fp32 for sgemm (fp32 activations: the
  // dequantized weights' results up to summation order; for comparisons and measurements).
  bool quant_gemm_ = true;
  std::vector<uint32_t> xb_;
  // matmul's activations quantized for block-typed weights (cpu::quantize_acts; aligned in place).
  std::vector<uint8_t> qacts_;
  // Prefill's integer GEMM: each pool thread's repacked weight panel (quant_gemm.hpp).
  std::vector<std::vector<uint8_t>> qpack_;
  std::vector<std::vector<uint32_t>> pack_;
};

}  // namespace retnet
