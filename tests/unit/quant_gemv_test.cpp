// The quantized decode GEMV kernels (src/backend/cpu/quant_gemv*.cpp): every weight type on every
// path (scalar, AVX2, AVX-512 VNNI; a path this build or CPU lacks is skipped alone) against a
// double-precision reference, over ragged shapes (row counts off every unroll, odd block counts,
// T = 1..9); bit-identity between the paths and between a batch and its rows alone; the activation
// quantizer; NaN propagation; the RETNET_NO_AVX512 switch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/quant_gemv.hpp"
#include "backend/cpu/quant_gemv_impl.hpp"
#include "common/dtype.hpp"
#include "quant_test_util.hpp"

namespace retnet {
namespace {

using cpu::QuantActs;
using cpu::QuantPath;
using quant_test::Acts;
using quant_test::kTypeName;
using quant_test::put16;

// ---- The test's own quantizers (independent of the library's, which the format issue adds): they
// make realistic weights; the kernels are checked against these weights dequantized, in double.

struct Matrix {
  int type = 0;  // 0 q8_0, 1 q4_0, 2 q4_k
  int64_t rows = 0, in = 0;
  std::vector<uint8_t> bytes;  // rows · row_bytes
  std::vector<double> deq;     // [rows, in] the values the blocks encode
};

size_t row_bytes(int type, int64_t in) {
  return type == 0 ? cpu::q8_0_row_bytes(in) : type == 1 ? cpu::q4_0_row_bytes(in) : cpu::q4_k_row_bytes(in);
}

float get16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// q8_0: d = max|x| / 127, q = round(x / d).
void quantize_q8_0(const float* x, uint8_t* blk, double* deq) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  put16(blk, amax / 127.f);
  const float d = get16(blk);
  for (int i = 0; i < 32; ++i) {
    const int q = d > 0 ? std::clamp(int(std::lround(x[i] / d)), -127, 127) : 0;
    blk[2 + i] = uint8_t(int8_t(q));
    deq[i] = double(d) * q;
  }
}

// q4_0: the value of largest magnitude maps to code 0 (−8·d), c = round(x / d) + 8 in [0, 15].
void quantize_q4_0(const float* x, uint8_t* blk, double* deq) {
  float m = 0;
  for (int i = 0; i < 32; ++i)
    if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  put16(blk, m / -8.f);
  const float d = get16(blk);
  std::memset(blk + 2, 0, 16);
  for (int i = 0; i < 32; ++i) {
    const int c = d != 0 ? std::clamp(int(std::lround(x[i] / d)) + 8, 0, 15) : 8;
    blk[2 + i % 16] |= uint8_t(i < 16 ? c : c << 4);
    deq[i] = double(d) * (c - 8);
  }
}

// q4_k's 12 scale bytes for 6-bit sc[8], m[8] (the inverse of kq4k_scale_min).
void pack_q4k_scales(const int* sc, const int* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// q4_k: per sub-block x ≈ scale·c − min (c in [0, 15], min = −min(x, 0)); the eight scales and
// mins as 6-bit multiples of d and dmin.
void quantize_q4_k(const float* x, uint8_t* blk, double* deq) {
  float scale[8], mn[8], smax = 0, mmax = 0;
  for (int s = 0; s < 8; ++s) {
    float lo = 0, hi = 0;
    for (int i = 0; i < 32; ++i) lo = std::min(lo, x[32 * s + i]), hi = std::max(hi, x[32 * s + i]);
    scale[s] = (hi - lo) / 15.f;
    mn[s] = -lo;
    smax = std::max(smax, scale[s]);
    mmax = std::max(mmax, mn[s]);
  }
  put16(blk, smax / 63.f);
  put16(blk + 2, mmax / 63.f);
  const float d = get16(blk), dmin = get16(blk + 2);
  int sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = d > 0 ? std::clamp(int(std::lround(scale[s] / d)), 0, 63) : 0;
    m[s] = dmin > 0 ? std::clamp(int(std::lround(mn[s] / dmin)), 0, 63) : 0;
  }
  pack_q4k_scales(sc, m, blk + 4);
  uint8_t* qs = blk + 16;
  std::memset(qs, 0, 128);
  for (int s = 0; s < 8; ++s) {
    const double ds = double(d) * sc[s], ms = double(dmin) * m[s];
    for (int i = 0; i < 32; ++i) {
      const int c = ds > 0 ? std::clamp(int(std::lround((x[32 * s + i] + ms) / ds)), 0, 15) : 0;
      qs[32 * (s / 2) + i] |= uint8_t(s % 2 ? c << 4 : c);
      deq[32 * s + i] = ds * c - ms;
    }
  }
}

Matrix make_matrix(int type, int64_t rows, int64_t in, std::mt19937& rng) {
  Matrix m;
  m.type = type, m.rows = rows, m.in = in;
  const size_t rb = row_bytes(type, in);
  m.bytes.assign(rb * size_t(rows), 0);
  m.deq.assign(size_t(rows * in), 0.0);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(in));
  const int64_t bs = type == 2 ? 256 : 32, bb = type == 0 ? 34 : type == 1 ? 18 : 144;
  for (int64_t r = 0; r < rows; ++r) {
    // Rows of different magnitudes, a few outliers, and now and then an all-zero block.
    const float mag = 0.02f * float(1 + r % 5);
    for (float& v : x) v = nd(rng) * mag * (rng() % 61 == 0 ? 8.f : 1.f);
    if (r % 7 == 3) std::fill(x.begin(), x.begin() + bs, 0.f);
    for (int64_t b = 0; b < in / bs; ++b) {
      uint8_t* blk = m.bytes.data() + size_t(r) * rb + size_t(b * bb);
      double* deq = m.deq.data() + r * in + b * bs;
      if (type == 0) quantize_q8_0(x.data() + b * bs, blk, deq);
      else if (type == 1) quantize_q4_0(x.data() + b * bs, blk, deq);
      else quantize_q4_k(x.data() + b * bs, blk, deq);
    }
  }
  // q8_0 files may hold −128, which the quantizer never writes: the kernels must not overflow on it.
  if (type == 0 && rows > 1) {
    m.bytes[2] = 0x80;
    m.deq[0] = double(get16(m.bytes.data())) * -128;
  }
  return m;
}

std::vector<float> random_x(int64_t T, int64_t in, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(T * in));
  for (float& v : x) v = nd(rng);
  return x;
}

void gemv(int type, const QuantActs& a, const Matrix& m, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath p) {
  if (type == 0) cpu::gemv_q8_0(a, m.bytes.data(), r0, r1, y, ldy, p);
  else if (type == 1) cpu::gemv_q4_0(a, m.bytes.data(), r0, r1, y, ldy, p);
  else cpu::gemv_q4_k(a, m.bytes.data(), r0, r1, y, ldy, p);
}

// The magnitude of what the kernels sum for weight row r and activation block b of row t: Σ of
// |term| over the block's terms as the kernel forms them (q8_0: w·q; q4_0: c·q and −8·Σq; q4_k:
// d·sc·c·q and dmin·m·Σq), times d. Their partial sums in fp32 are bounded by it, not by Σ|w·q|
// (q4_0's and q4_k's offsets cancel what the codes add).
double kernel_terms(const Matrix& m, int64_t r, int64_t b, const QuantActs& a, int64_t t) {
  const int8_t* q = a.q + (t * a.nb + b) * 32;
  const double dx = std::fabs(double(a.d[t * a.nb + b]));
  const uint8_t* row = m.bytes.data() + size_t(r) * row_bytes(m.type, m.in);
  double sum = 0, qsum = 0;
  for (int i = 0; i < 32; ++i) qsum += q[i];
  if (m.type == 0) {
    const uint8_t* blk = row + size_t(b) * sizeof(BlockQ8_0);
    for (int i = 0; i < 32; ++i) sum += std::fabs(double(int8_t(blk[2 + i])) * q[i]);
    return std::fabs(get16(blk)) * dx * sum;
  }
  if (m.type == 1) {
    const uint8_t* blk = row + size_t(b) * sizeof(BlockQ4_0);
    for (int i = 0; i < 32; ++i) sum += double(i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4) * std::abs(q[i]);
    return std::fabs(get16(blk)) * dx * (sum + 8 * std::fabs(qsum));
  }
  const uint8_t* blk = row + size_t(b / 8) * sizeof(BlockQ4K);
  const int sb = int(b % 8);
  const Q4KScaleMin sm = kq4k_scale_min(blk + 4, sb);
  for (int i = 0; i < 32; ++i) sum += double((blk[16 + 32 * (sb / 2) + i] >> (4 * (sb % 2))) & 15) * std::abs(q[i]);
  return dx * (std::fabs(get16(blk)) * sm.scale * sum + std::fabs(get16(blk + 2)) * sm.min * std::fabs(qsum));
}

class QuantGemvPath : public quant_test::QuantPathTest {};

// Every type against the double-precision dot of the dequantized weights and the dequantized
// activations (so only the kernel's fp32 arithmetic differs), and against the unquantized x.
TEST_P(QuantGemvPath, MatchesDoubleReferenceOnRaggedShapes) {
  const QuantPath path = GetParam();
  std::mt19937 rng(17);
  for (int type = 0; type < 3; ++type) {
    const std::vector<int64_t> widths =
        type == 2 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 224, 800};
    for (int64_t in : widths) {
      for (int64_t rows : {1, 5, 13}) {
        const Matrix m = make_matrix(type, rows, in, rng);
        for (int64_t T = 1; T <= 9; ++T) {
          const std::vector<float> x = random_x(T, in, rng);
          const Acts acts(x.data(), T, in);
          const QuantActs& a = acts.a;
          // A panel in the middle of W (r0 > 0), written with a row stride ldy > its width; the
          // columns around it must stay untouched.
          const int64_t r0 = rows > 2 ? 1 : 0, ldy = rows + 3;
          std::vector<float> y(size_t(T * ldy), -7.f);
          gemv(type, a, m, r0, rows, y.data() + 1, ldy, path);
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t c = 0; c < ldy; ++c) {
              const float got = y[size_t(t * ldy + c)];
              const int64_t r = r0 + c - 1;
              if (c < 1 || r >= rows) {
                ASSERT_EQ(got, -7.f) << "wrote outside the panel: t " << t << " c " << c;
                continue;
              }
              double ref = 0, mag = 0, ref_x = 0, qerr = 0;
              for (int64_t b = 0; b < in / 32; ++b) {
                const double dx = a.d[t * a.nb + b];
                double amax = 0, wabs = 0;
                for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
                  const double w = m.deq[size_t(r * in + i)], xv = x[size_t(t * in + i)];
                  ref += w * dx * a.q[t * in + i];
                  ref_x += w * xv;
                  amax = std::max(amax, std::fabs(xv));
                  wabs += std::fabs(w);
                }
                qerr += amax / 254 * wabs;
                mag += kernel_terms(m, r, b, a, t);
              }
              // fp32 arithmetic: a per-block scale product and one fma per block in each of
              // eight lanes × four accumulators (≤ in/128 + 1 roundings per lane), three levels of
              // the final sum, q4_k's min term the same again: each rounding is at most 2^-24 of a
              // partial sum bounded by the summed terms' magnitude M (kernel_terms), so |error| ≤
              // (in/32 + 16) · 2^-24 · M (worst case; typically a few ulps). The integers are exact.
              const double tol = (double(in) / 32 + 16) * std::ldexp(1.0, -24) * mag + 1e-30;
              ASSERT_NEAR(got, ref, tol) << kTypeName[type] << " in " << in << " rows " << rows << " T " << T << " t "
                                         << t << " r " << r;
              // Against x itself: each activation is off by at most d/2 = max|x of its block| / 254
              // (round to nearest), so |Σ w·(x − x̂)| ≤ Σ_blocks max|x| / 254 · Σ|w|, plus the above.
              ASSERT_NEAR(got, ref_x, qerr * (1 + 1e-6) + tol)
                  << kTypeName[type] << " vs fp32 x: in " << in << " rows " << rows << " T " << T;
            }
          }
        }
      }
    }
  }
}

// The vector paths reproduce the scalar kernels bit for bit, and a row's result does not depend on
// the batch it is in (T = 1..9 covers every group remainder of both vector paths), nor on W's alignment.
TEST_P(QuantGemvPath, BitIdenticalToScalarAndToEachRowAlone) {
  const QuantPath path = GetParam();
  std::mt19937 rng(23);
  for (int type = 0; type < 3; ++type) {
    const int64_t in = type == 2 ? 768 : 352;  // q8_0/q4_0: 11 blocks, an odd count
    const int64_t rows = 19;
    const Matrix m = make_matrix(type, rows, in, rng);
    for (int64_t T = 1; T <= 9; ++T) {
      const std::vector<float> x = random_x(T, in, rng);
      const Acts batch(x.data(), T, in);
      std::vector<float> y(size_t(T * rows)), ys(size_t(T * rows));
      gemv(type, batch.a, m, 0, rows, y.data(), rows, path);
      gemv(type, batch.a, m, 0, rows, ys.data(), rows, QuantPath::Scalar);
      ASSERT_EQ(0, std::memcmp(y.data(), ys.data(), y.size() * 4))
          << kTypeName[type] << " T " << T << ": " << cpu::quant_path_name(path) << " differs from scalar";
      // W at an odd address (a file's tensor need not be aligned): the same results.
      std::vector<uint8_t> odd(m.bytes.size() + 1);
      std::memcpy(odd.data() + 1, m.bytes.data(), m.bytes.size());
      std::vector<float> yo(y.size());
      if (type == 0) cpu::gemv_q8_0(batch.a, odd.data() + 1, 0, rows, yo.data(), rows, path);
      else if (type == 1) cpu::gemv_q4_0(batch.a, odd.data() + 1, 0, rows, yo.data(), rows, path);
      else cpu::gemv_q4_k(batch.a, odd.data() + 1, 0, rows, yo.data(), rows, path);
      ASSERT_EQ(0, std::memcmp(y.data(), yo.data(), y.size() * 4)) << kTypeName[type] << " T " << T << ": unaligned W";
      for (int64_t t = 0; t < T; ++t) {
        const Acts one(x.data() + t * in, 1, in);
        std::vector<float> y1(static_cast<size_t>(rows));
        gemv(type, one.a, m, 0, rows, y1.data(), rows, path);
        ASSERT_EQ(0, std::memcmp(y1.data(), y.data() + t * rows, size_t(rows) * 4))
            << kTypeName[type] << " row " << t << " of a batch of " << T << " differs from the row alone";
      }
    }
  }
}

// A NaN or an infinity in the activations makes the outputs it feeds NaN, as in fp32, not finite.
TEST_P(QuantGemvPath, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(5);
  for (int type = 0; type < 3; ++type) {
    const int64_t in = 256, rows = 3, T = 3;
    const Matrix m = make_matrix(type, rows, in, rng);
    std::vector<float> x = random_x(T, in, rng);
    x[size_t(0 * in + 40)] = std::nanf("");
    x[size_t(2 * in + 255)] = -INFINITY;
    const Acts acts(x.data(), T, in);
    std::vector<float> y(size_t(T * rows));
    gemv(type, acts.a, m, 0, rows, y.data(), rows, GetParam());
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(std::isnan(y[size_t(r)])) << kTypeName[type];
      EXPECT_TRUE(std::isfinite(y[size_t(rows + r)])) << kTypeName[type];
      EXPECT_TRUE(std::isnan(y[size_t(2 * rows + r)])) << kTypeName[type];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, QuantGemvPath,
                         ::testing::Values(QuantPath::Scalar, QuantPath::Avx2, QuantPath::Avx512Vnni),
                         quant_test::path_param_name);

// The activation blocks: codes within d/2 of x (round to nearest), d = max|x| / 127, the sums; the
// vector quantizer writes exactly the scalar one's bytes.
TEST(QuantGemv, ActivationQuantization) {
  std::mt19937 rng(3);
  const int64_t T = 3, in = 32 * 7;
  std::vector<float> x = random_x(T, in, rng);
  std::fill(x.begin() + 64, x.begin() + 128, 0.f);  // an all-zero block
  x[100] = 0.5f * 1e-31f;                           // and one with only a tiny value: d = 0
  const Acts acts(x.data(), T, in);
  const QuantActs& a = acts.a;
  ASSERT_EQ(a.T, T);
  ASSERT_EQ(a.nb, in / 32);
  for (int64_t b = 0; b < T * a.nb; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(b * 32 + i)]));
    const float d = a.d[b];
    if (amax < 1e-30f) {
      EXPECT_EQ(d, 0.f);
    } else {
      EXPECT_EQ(d, amax / 127);
    }
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = a.q[b * 32 + i];
      ASSERT_LE(std::abs(q), 127);
      if (d > 0) {
        ASSERT_LE(std::fabs(double(x[size_t(b * 32 + i)]) - double(d) * q), double(d) * (0.5 + 1e-5)) << b << " " << i;
      }
      sum += q;
    }
    EXPECT_EQ(a.s[b], d * float(sum));
  }
  std::vector<uint8_t> buf2(cpu::quant_acts_bytes(T, in));
  cpu::qgemv::quantize_acts_scalar(x.data(), T, in, buf2.data());
  EXPECT_EQ(0, std::memcmp(buf2.data(), acts.buf.data(), buf2.size())) << "vector and scalar quantizers differ";
}

// q4_k's word-wise scale unpacking is kq4k_scale_min for every sub-block, on random bytes.
TEST(QuantGemv, Q4KScaleUnpacking) {
  std::mt19937 rng(11);
  for (int n = 0; n < 1000; ++n) {
    uint8_t s[12];
    for (uint8_t& v : s) v = uint8_t(rng());
    uint64_t sc, m;
    cpu::qgemv::q4k_scales_mins(s, sc, m);
    for (int j = 0; j < 8; ++j) {
      const Q4KScaleMin e = kq4k_scale_min(s, j);
      ASSERT_EQ((sc >> (8 * j)) & 0xFF, e.scale) << j;
      ASSERT_EQ((m >> (8 * j)) & 0xFF, e.min) << j;
    }
    // And the test's packer is its inverse.
    int scv[8], mv[8];
    for (int j = 0; j < 8; ++j) scv[j] = int(rng() % 64), mv[j] = int(rng() % 64);
    pack_q4k_scales(scv, mv, s);
    for (int j = 0; j < 8; ++j) {
      ASSERT_EQ(kq4k_scale_min(s, j).scale, scv[j]);
      ASSERT_EQ(kq4k_scale_min(s, j).min, mv[j]);
    }
  }
}

// The default path is the best this machine runs, and RETNET_NO_AVX512=1 (the ctest
// quant_gemv_without_avx512 sets it) makes it AVX2 on machines with AVX-512 too.
TEST(QuantGemv, DefaultPathAndAvx512Switch) {
  const char* off = std::getenv("RETNET_NO_AVX512");
  const bool no512 = off && *off && std::strcmp(off, "0") != 0;
  QuantPath want = QuantPath::Scalar;
  if (cpu::quant_path_supported(QuantPath::Avx2)) want = QuantPath::Avx2;
  if (!no512 && cpu::quant_path_supported(QuantPath::Avx512Vnni)) want = QuantPath::Avx512Vnni;
  EXPECT_EQ(cpu::quant_path_default(), want) << cpu::quant_path_name(cpu::quant_path_default());
#ifdef __AVX2__
  EXPECT_TRUE(cpu::quant_path_supported(QuantPath::Avx2));
#endif
}

}  // namespace
}  // namespace retnet
