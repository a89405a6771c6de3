// The reference quantizers of the block weight types (layouts in quant_blocks.hpp): fp32 rows to
// blocks and back, scalar and deterministic. Every path that turns fp32 into q8_0/q4_0/q4_k (the
// `retnet quantize` command, LoadOptions::quantize, random models) goes through quantize_row, and
// every portable reader through dequantize_row or load_elem (dtype.hpp), which compute the same
// values: x = d·q (q8_0), d·(c − 8) (q4_0), (d·sc)·c − dmin·m (q4_k), in fp32.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/types.hpp"

namespace retnet {

// dst [row_bytes(n)] = x [n] quantized to the block type t (n a multiple of its block). Throws Error
// "<what>: ..." when x holds NaN or ±Inf (naming the element), or a value too large for the type's
// fp16 scale (q8_0: |x| above about 8.3e6; q4_0: 5.2e5; q4_k: a block range above about 5.8e7).
//   q8_0, q4_0: llama.cpp's rounding. q8_0: d = max|x| / 127, q = round(x / d) (half away from
//   zero). q4_0: d = m / −8 with m the value of largest magnitude (its sign kept), c = min(15,
//   trunc(x / d + 8.5)).
//   q4_k: for each sub-block of 32, a search over candidate scales of its range (least-squares refit
//   of scale and min for each), then 6-bit scales and mins against d = max scale / 63 and dmin = max
//   min / 63, each rounded and then moved by ±1 to where the block's error is least. Errors are
//   weighted by x² (+ 1e-3 of the sub-block's mean square): the large weights are kept closest.
void quantize_row(DType t, const float* x, int64_t n, void* dst, const std::string& what);

// dst [rows, dtype_row_bytes(t, cols)] = the rows of src (type src_t: F32/F16/BF16, or a block type,
// read through load_row_f32; row r at src + r·dtype_row_bytes(src_t, cols)) quantized to t by
// quantize_row, on `threads` threads (0: all hardware threads), each a contiguous range of rows: the
// bytes are the same whatever the thread count. Rows go in batches; on_rows(rows done so far) is called
// on the calling thread after each batch (an exception it throws stops the work). An error of
// quantize_row names what(r) for its row r; with errors on several threads, the first row's is thrown.
void quantize_rows(DType t, DType src_t, const void* src, int64_t rows, int64_t cols, void* dst,
                   const std::function<std::string(int64_t)>& what, int threads = 0,
                   const std::function<void(int64_t)>& on_rows = {});

// dst [n] = the n values of the blocks at src (n a multiple of t's block; t a block type).
void dequantize_row(DType t, const void* src, int64_t n, float* dst);

// dst [n] = elements [0, n) of a weight row of any type t, in fp32 (a block type: n whole blocks).
void load_row_f32(DType t, const void* src, int64_t n, float* dst);

// "q8_0", "q4_0", "q4_k" (also upper case) -> the type; nullopt for anything else.
std::optional<DType> quant_type_from_name(std::string_view name);
// "q8_0, q4_0, q4_k"
std::string quant_type_names();

}  // namespace retnet
