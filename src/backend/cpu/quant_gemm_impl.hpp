// Internals of the quantized prefill GEMM (quant_gemm.hpp): the AVX-512 VNNI tile kernels that
// quant_gemm.cpp dispatches to.
#pragma once
#include "backend/cpu/quant_gemv_impl.hpp"

namespace retnet::cpu::qgemm {

// AVX-512 VNNI (quant_gemm_avx512.cpp): gemv_q8_0's contract, q8_0 / q4_0 / q4_k; null where the
// compiler cannot target AVX-512 (the path is then unsupported anyway).
extern const qgemv::RowsFn kAvx512[3];

}  // namespace retnet::cpu::qgemm
