// The CUDA kernels on block-quantized weights (q8_0, q4_0, q4_k; kernels/gemv_quant.cuh, quant.cuh):
// the decode GEMV against a double-precision product of the dequantized weights (the library's
// dequantize_row, an independent scalar decoder of the same layout), and embed / widen against
// dequantize_row itself.
//
// GEMV tolerance, per output: |y − y_ref| ≤ (in/32 + 8) · 2^-24 · Σ_i |w_i·x_i|. The kernel's weight
// values are the dequantized ones (each rounded as dequantize_row rounds it); each lane sums in/32/32
// blocks of 32 products with one rounding per fma, then a 5-step butterfly: at most in/32 + 5 roundings
// on any partial sum, each ≤ 2^-24 of a value ≤ Σ|w·x| (the standard bound of recursive summation).
// A q4_k weight may differ from dequantize_row's by the rounding of its subtraction when a compiler
// fuses d·sc·c − dmin·m into one fma: that adds ≤ 2^-24 · |w·x| per term, within the 3 spare roundings.
#include <cstring>

#include "common/quant.hpp"
#include "kernel_test_util.hpp"

namespace {

using namespace ktest;
using retnet::DType;

constexpr DType kQuantTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K};

// rows × in weights quantized row by row (random, with one larger value per row so scales vary).
std::vector<uint8_t> quantized(DType t, int64_t rows, int64_t in, uint32_t seed) {
  std::vector<float> f = randu(size_t(rows * in), seed, -1.f, 1.f);
  for (int64_t r = 0; r < rows; ++r) f[size_t(r * in + (r * 7) % in)] *= 3.f;
  const size_t rb = retnet::dtype_row_bytes(t, in);
  std::vector<uint8_t> q(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; ++r) retnet::quantize_row(t, f.data() + r * in, in, q.data() + size_t(r) * rb, "w");
  return q;
}

std::vector<float> dequantized(DType t, const uint8_t* q, int64_t rows, int64_t in) {
  std::vector<float> f(size_t(rows * in));
  const size_t rb = retnet::dtype_row_bytes(t, in);
  for (int64_t r = 0; r < rows; ++r) retnet::dequantize_row(t, q + size_t(r) * rb, in, f.data() + r * in);
  return f;
}

// Runs the GEMV with the weights at byte offset w_off and x at float offset x_off of their buffers
// (misaligned starts), y rows ldy apart.
std::vector<float> run_gemv(DType t, int64_t T, int64_t in, int64_t rows, const std::vector<uint8_t>& q, size_t w_off,
                            const std::vector<float>& x, size_t x_off, int64_t ldy) {
  std::vector<uint8_t> wb(w_off + q.size());
  std::memcpy(wb.data() + w_off, q.data(), q.size());
  std::vector<float> xb(x_off + x.size());
  std::copy(x.begin(), x.end(), xb.begin() + std::ptrdiff_t(x_off));
  return run_checked([&] {
    DevBuf<uint8_t> dw(wb);
    DevBuf<float> dx(xb), dy(std::vector<float>(size_t(T * ldy), -7.f));
    expect_ok(retnet::launch_gemv(dx.get() + x_off, T, in, dw.get() + w_off, t, rows, dy.get(), ldy, nullptr));
    return dy.download();
  });
}

void check_qgemv(DType t, int64_t T, int64_t in, int64_t rows, size_t w_off, size_t x_off) {
  const std::vector<uint8_t> q = quantized(t, rows, in, uint32_t(in * 31 + rows));
  const std::vector<float> wf = dequantized(t, q.data(), rows, in);
  const std::vector<float> x = randu(size_t(T * in), uint32_t(17 + T), -2.f, 2.f);
  const int64_t ldy = rows + 3;
  const std::vector<float> got = run_gemv(t, T, in, rows, q, w_off, x, x_off, ldy);
  const double bound_rel = double(in / 32 + 8) * std::ldexp(1.0, -24);
  int bad = 0;
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < in; ++c) {
        const double p = double(wf[size_t(r * in + c)]) * double(x[size_t(i * in + c)]);
        ref += p;
        mag += std::fabs(p);
      }
      const double err = std::fabs(double(got[size_t(i * ldy + r)]) - ref);
      if (err > bound_rel * mag && bad++ < 3)
        ADD_FAILURE() << retnet::dtype_name(t) << " T=" << T << " in=" << in << " rows=" << rows << " w_off=" << w_off
                      << " x_off=" << x_off << ": y[" << i << "," << r << "] = " << got[size_t(i * ldy + r)]
                      << ", reference " << ref << " (error " << err << " > " << bound_rel * mag << ")";
    }
    for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(got[size_t(i * ldy + r)], -7.f) << "wrote into the row gap";
  }
}

// Widths: one block, an odd number of blocks, and more blocks than a warp has lanes (lanes loop).
std::vector<int64_t> widths(DType t) {
  const int64_t be = retnet::dtype_traits(t).block_elems;
  return {be, 3 * be, 35 * be};
}

KTEST(GemvQuant, MatchesDoubleReferenceForEveryTypeAndT) {
  KTEST_REQUIRE_DEVICE();
  for (DType t : kQuantTypes)
    for (int64_t T = 1; T <= retnet::kGemvMaxRows; ++T)
      for (int64_t in : widths(t))
        for (int64_t rows : {1, 9}) {
          if (in > 32 * retnet::dtype_traits(t).block_elems && rows > 1 && T % 3 != 1) continue;  // keep it fast
          check_qgemv(t, T, in, rows, 0, 0);
        }
}

KTEST(GemvQuant, RaggedRowCountsAndMisalignedStarts) {
  KTEST_REQUIRE_DEVICE();
  // 70 rows: 9 blocks of 8 warps, the last partly idle. A 2-byte weight offset leaves every q4_k row
  // off 16-byte alignment (the 16-bit path) and shifts q8_0 / q4_0 blocks' 4-byte parity; a 1-float x
  // offset takes the scalar x path.
  for (DType t : kQuantTypes) {
    const int64_t be = retnet::dtype_traits(t).block_elems;
    check_qgemv(t, 3, 3 * be, 70, 0, 0);
    check_qgemv(t, 2, 5 * be, 13, 2, 0);
    check_qgemv(t, 5, be, 11, 0, 1);
    check_qgemv(t, 8, 3 * be, 9, 2, 3);
  }
}

KTEST(GemvQuant, BatchRowsAreBitIdenticalToSingleRows) {
  KTEST_REQUIRE_DEVICE();
  // Row t of a batch of T must not depend on T: the same summation order as that row decoded alone.
  for (DType t : kQuantTypes) {
    const int64_t in = 3 * retnet::dtype_traits(t).block_elems, rows = 10;
    const std::vector<uint8_t> q = quantized(t, rows, in, 5);
    const std::vector<float> x = randu(size_t(8 * in), 99, -2.f, 2.f);
    for (int64_t T : {2, 5, 8}) {
      const std::vector<float> batch =
          run_gemv(t, T, in, rows, q, 0, std::vector<float>(x.begin(), x.begin() + T * in), 0, rows);
      for (int64_t i = 0; i < T; ++i) {
        const std::vector<float> one =
            run_gemv(t, 1, in, rows, q, 0, std::vector<float>(x.begin() + i * in, x.begin() + (i + 1) * in), 0, rows);
        const std::vector<float> row(batch.begin() + i * rows, batch.begin() + (i + 1) * rows);
        EXPECT_EQ(count_mismatch(row, one), 0u) << retnet::dtype_name(t) << " T=" << T << " row " << i;
      }
    }
  }
}

KTEST(GemvQuant, RejectsWidthsOfPartialBlocks) {
  KTEST_REQUIRE_DEVICE();
  DevBuf<float> x(64), y(8);
  DevBuf<uint8_t> w(1024);
  for (DType t : kQuantTypes)
    EXPECT_EQ(retnet::launch_gemv(x.get(), 1, 48, w.get(), t, 2, y.get(), 2, nullptr), cudaErrorInvalidValue)
        << retnet::dtype_name(t);
  EXPECT_EQ(retnet::launch_widen(w.get(), DType::Q4_K, 100, y.get(), nullptr), cudaErrorInvalidValue);
  const std::vector<int32_t> ids = {0};
  DevBuf<int32_t> did(ids);
  EXPECT_EQ(retnet::launch_embed(w.get(), DType::Q8_0, did.get(), 1, 48, 1.f, y.get(), nullptr), cudaErrorInvalidValue);
}

// Embed and widen: each element is dequantize_row's value. q8_0 and q4_0 are one product, bit-exact;
// q4_k is d·sc·c − dmin·m, where a compiler may fuse the product into the subtraction on either side:
// ≤ 1 rounding of the result (2^-24 relative to |d·sc·c| + |dmin·m| ≤ 2 · the block's range: 2^-22 of
// the row's max |value| bounds it).
void expect_dequantized(DType t, const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  if (t != DType::Q4_K) {
    EXPECT_EQ(count_mismatch(got, want), 0u) << what << " " << retnet::dtype_name(t);
    return;
  }
  double m = 0;
  for (float v : want) m = std::max(m, double(std::fabs(v)));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(double(got[i]) - double(want[i])), std::ldexp(m, -22)) << what << " q4_k element " << i;
}

KTEST(GemvQuant, EmbedAndWidenDequantize) {
  KTEST_REQUIRE_DEVICE();
  for (DType t : kQuantTypes) {
    const int64_t D = 3 * retnet::dtype_traits(t).block_elems, V = 7;
    const std::vector<uint8_t> q = quantized(t, V, D, 11);
    const std::vector<float> table = dequantized(t, q.data(), V, D);
    const std::vector<int32_t> ids = {6, 0, 3, 3};
    const int64_t T = int64_t(ids.size());
    for (float scale : {1.0f, 0.5f}) {
      const std::vector<float> got = run_checked([&] {
        DevBuf<uint8_t> dw(q);
        DevBuf<int32_t> did(ids);
        DevBuf<float> out(size_t(T * D));
        expect_ok(retnet::launch_embed(dw.get(), t, did.get(), T, D, scale, out.get(), nullptr));
        return out.download();
      });
      std::vector<float> want(size_t(T * D));
      for (int64_t i = 0; i < T; ++i)
        for (int64_t c = 0; c < D; ++c) {
          const float v = table[size_t(ids[size_t(i)] * D + c)];
          want[size_t(i * D + c)] = scale != 1.0f ? v * scale : v;
        }
      expect_dequantized(t, got, want, "embed");
    }
    // Widen rows 2..6 (what a prefill panel does): from a row start, whole rows.
    const size_t rb = retnet::dtype_row_bytes(t, D);
    const std::vector<float> got = run_checked([&] {
      DevBuf<uint8_t> dw(q);
      DevBuf<float> out(size_t(5 * D));
      expect_ok(retnet::launch_widen(dw.get() + 2 * rb, t, size_t(5 * D), out.get(), nullptr));
      return out.download();
    });
    expect_dequantized(t, got, std::vector<float>(table.begin() + 2 * D, table.begin() + 7 * D), "widen");
  }
}

}  // namespace
