// The quantized prefill GEMM (src/backend/cpu/quant_gemm*.cpp): every weight type on every path
// (scalar, AVX2, AVX-512 VNNI; a path this build or CPU lacks is skipped alone) against a double
// reference of the dequantized weights times the int8-quantized activations, over ragged shapes
// (T = 1..67 activation rows, weight rows off the 16-row groups, block counts off everything);
// bit-identity between the paths; CpuBackend::matmul with 2 threads equal to 1 thread, also past the
// 512-row split; NaN propagation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/quant_gemm.hpp"
#include "common/dtype.hpp"
#include "quant_test_util.hpp"

namespace retnet {
namespace {

using cpu::QuantActs;
using cpu::QuantPath;
using quant_test::Acts;
using quant_test::kTypeName;
using quant_test::put16;

const DType kDType[3] = {DType::Q8_0, DType::Q4_0, DType::Q4_K};
size_t block_bytes(int type) { return type == 0 ? 34 : type == 1 ? 18 : 144; }
int64_t block_elems(int type) { return type == 2 ? 256 : 32; }

double get16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return double(f16_to_f32(h));
}

// Random blocks: codes uniform over their whole range (q8_0 includes −128, which files may hold),
// scales of a few magnitudes, now and then a zero scale.
std::vector<uint8_t> random_matrix(int type, int64_t rows, int64_t in, std::mt19937& rng) {
  const size_t bb = block_bytes(type), nblk = size_t(rows * in / block_elems(type));
  std::vector<uint8_t> m(bb * nblk);
  for (uint8_t& v : m) v = uint8_t(rng());
  for (size_t b = 0; b < nblk; ++b) {
    uint8_t* blk = m.data() + b * bb;
    const float d = rng() % 13 == 0 ? 0.f : 1e-3f * float(1 + rng() % 40);
    put16(blk, d);
    if (type == 2) put16(blk + 2, 1e-3f * float(rng() % 30));
  }
  return m;
}

// The test's own decoding of the blocks (llama.cpp's semantics): per 32-value block b of row r, its
// integer codes and the scale and offset terms they carry, w_i = scale·c_i − min.
struct Block32 {
  int c[32];
  double scale, min;
};
Block32 decode(int type, const std::vector<uint8_t>& m, int64_t in, int64_t r, int64_t b) {
  Block32 o{};
  const uint8_t* row = m.data() + size_t(r) * size_t(in / block_elems(type)) * block_bytes(type);
  if (type == 0) {
    const uint8_t* blk = row + size_t(b) * 34;
    o.scale = get16(blk);
    for (int i = 0; i < 32; ++i) o.c[i] = int8_t(blk[2 + i]);
  } else if (type == 1) {
    const uint8_t* blk = row + size_t(b) * 18;
    o.scale = get16(blk);
    o.min = 8 * o.scale;
    for (int i = 0; i < 32; ++i) o.c[i] = i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4;
  } else {
    const uint8_t* blk = row + size_t(b / 8) * 144;
    const int j = int(b % 8);
    const uint8_t* s = blk + 4;
    int sc, mn;  // the 6-bit scale and min of sub-block j
    if (j < 4) sc = s[j] & 63, mn = s[j + 4] & 63;
    else sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    o.scale = get16(blk) * sc;
    o.min = get16(blk + 2) * mn;
    for (int i = 0; i < 32; ++i) o.c[i] = (blk[16 + 32 * (j / 2) + i] >> (4 * (j % 2))) & 15;
  }
  return o;
}

// 64-byte aligned pack buffer for rows weight rows.
struct Pack {
  std::vector<uint8_t> buf;
  uint8_t* p;
  Pack(int64_t rows, int64_t in) : buf(cpu::quant_pack_bytes(rows, in) + 64) {
    p = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  }
};

void gemm(int type, const QuantActs& a, const std::vector<uint8_t>& m, int64_t r0, int64_t r1, float* y, int64_t ldy,
          QuantPath p) {
  Pack pk(r1 - r0, a.nb * 32);
  if (type == 0) cpu::gemm_q8_0(a, m.data(), r0, r1, y, ldy, pk.p, p);
  else if (type == 1) cpu::gemm_q4_0(a, m.data(), r0, r1, y, ldy, pk.p, p);
  else cpu::gemm_q4_k(a, m.data(), r0, r1, y, ldy, pk.p, p);
}

std::vector<float> random_x(int64_t T, int64_t in, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(T * in));
  for (float& v : x) v = nd(rng) * (rng() % 50 == 0 ? 10.f : 1.f);
  return x;
}

class QuantGemmPath : public quant_test::QuantPathTest {};

// Against Σ_b d_x(t,b)·(scale·Σ c·q − min·Σ q) in double: the weights and activations exactly as the
// kernel sees them, so only its fp32 arithmetic differs. Each block's integer sum is exact; then one
// rounding of the scale product s_w·d_x (relative 2^-24) and one of the fma into the running sum per
// block (q4_k: the same again for its min term, and the final subtraction). Every partial sum is
// bounded by M = Σ_b |block term| (q4_k: both kinds), so |error| ≤ (nb + 2)·2^-24·M: a strict bound,
// tight because M is the sum of the terms actually added (not of |w|·|x|).
TEST_P(QuantGemmPath, MatchesDoubleReferenceOnRaggedShapes) {
  const QuantPath path = GetParam();
  std::mt19937 rng(41);
  for (int type = 0; type < 3; ++type) {
    // Widths: block counts of 1, 3, 25 (q4_k: 8, 24 sub-blocks); rows below, at and past 16-row groups.
    const std::vector<int64_t> widths = type == 2 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 800};
    for (size_t wi = 0; wi < widths.size(); ++wi) {
      const int64_t in = widths[wi], nb = in / 32;
      for (int64_t rows : {1, 16, 37}) {
        const std::vector<uint8_t> m = random_matrix(type, rows, in, rng);
        // Every T in 1..67 for the widest shape; the tile edges for the others.
        std::vector<int64_t> Ts;
        if (wi + 1 == widths.size() && rows == 37)
          for (int64_t T = 1; T <= 67; ++T) Ts.push_back(T);
        else Ts = {1, 7, 8, 9, 67};
        for (int64_t T : Ts) {
          const std::vector<float> x = random_x(T, in, rng);
          const Acts acts(x.data(), T, in);
          const QuantActs& a = acts.a;
          // A panel in the middle of W (r0 > 0) into a wider y (ldy > its width): the columns around
          // it must stay untouched.
          const int64_t r0 = rows > 2 ? 1 : 0, ldy = rows + 3;
          std::vector<float> y(size_t(T * ldy), -7.f);
          gemm(type, a, m, r0, rows, y.data() + 1, ldy, path);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < ldy; ++c) {
              const float got = y[size_t(t * ldy + c)];
              const int64_t r = r0 + c - 1;
              if (c < 1 || r >= rows) {
                ASSERT_EQ(got, -7.f) << "wrote outside the panel: t " << t << " c " << c;
                continue;
              }
              double ref = 0, mag = 0;
              for (int64_t b = 0; b < nb; ++b) {
                const Block32 w = decode(type, m, in, r, b);
                const int8_t* q = a.q + (t * nb + b) * 32;
                int64_t cq = 0, qs = 0;
                for (int i = 0; i < 32; ++i) cq += int64_t(w.c[i]) * q[i], qs += q[i];
                const double dx = a.d[t * nb + b];
                const double main = w.scale * double(type == 1 ? cq - 8 * qs : cq) * dx;
                const double off = type == 2 ? w.min * double(qs) * dx : 0.0;
                ref += main - off;
                mag += std::fabs(main) + std::fabs(off);
              }
              const double tol = double(nb + 2) * std::ldexp(1.0, -24) * mag + 1e-30;
              ASSERT_NEAR(got, ref, tol) << kTypeName[type] << " in " << in << " rows " << rows << " T " << T << " t "
                                         << t << " r " << r;
            }
        }
      }
    }
  }
}

// The vector paths reproduce the scalar kernel bit for bit (T = 1..19 covers every tile remainder
// of both vector paths; 37 rows, a partial 16-row group and a partial 8-lane half).
TEST_P(QuantGemmPath, BitIdenticalToScalar) {
  const QuantPath path = GetParam();
  std::mt19937 rng(43);
  for (int type = 0; type < 3; ++type) {
    const int64_t in = type == 2 ? 512 : 352, rows = 37;
    const std::vector<uint8_t> m = random_matrix(type, rows, in, rng);
    for (int64_t T = 1; T <= 19; ++T) {
      const std::vector<float> x = random_x(T, in, rng);
      const Acts acts(x.data(), T, in);
      std::vector<float> y(size_t(T * rows)), ys(y.size());
      gemm(type, acts.a, m, 0, rows, y.data(), rows, path);
      gemm(type, acts.a, m, 0, rows, ys.data(), rows, QuantPath::Scalar);
      ASSERT_EQ(0, std::memcmp(y.data(), ys.data(), y.size() * 4))
          << kTypeName[type] << " T " << T << ": " << cpu::quant_path_name(path) << " differs from scalar";
    }
  }
}

// A NaN or an infinity in the activations makes the outputs it feeds NaN, as in fp32.
TEST_P(QuantGemmPath, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(47);
  for (int type = 0; type < 3; ++type) {
    const int64_t in = 256, rows = 18, T = 3;
    const std::vector<uint8_t> m = random_matrix(type, rows, in, rng);
    std::vector<float> x = random_x(T, in, rng);
    x[size_t(0 * in + 40)] = std::nanf("");
    x[size_t(2 * in + 255)] = -INFINITY;
    const Acts acts(x.data(), T, in);
    std::vector<float> y(size_t(T * rows));
    gemm(type, acts.a, m, 0, rows, y.data(), rows, GetParam());
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(std::isnan(y[size_t(r)])) << kTypeName[type];
      EXPECT_TRUE(std::isfinite(y[size_t(rows + r)])) << kTypeName[type];
      EXPECT_TRUE(std::isnan(y[size_t(2 * rows + r)])) << kTypeName[type];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, QuantGemmPath,
                         ::testing::Values(QuantPath::Scalar, QuantPath::Avx2, QuantPath::Avx512Vnni),
                         quant_test::path_param_name);

// CpuBackend::matmul on block-typed weights with many rows: 2 threads give exactly 1 thread's
// results (and the kernel's, called directly), for a fused product of all three types, for T past
// the 512-row quantization block (split in two) too.
TEST(QuantGemm, BackendThreadsAndSplitGiveTheKernelsResults) {
  std::mt19937 rng(53);
  const int64_t in = 256;
  const int64_t rows[3] = {70, 33, 129};
  std::vector<uint8_t> m[3];
  WeightRef w[3];
  for (int type = 0; type < 3; ++type) {
    m[type] = random_matrix(type, rows[type], in, rng);
    w[type] = {m[type].data(), kDType[type], rows[type], in};
  }
  CpuBackend one(1), two(2);
  for (int64_t T : {67, 600}) {
    const std::vector<float> x = random_x(T, in, rng);
    std::vector<float> y1[3], y2[3];
    Backend::MatmulJob j1[3], j2[3];
    for (int type = 0; type < 3; ++type) {
      y1[type].assign(size_t(T * rows[type]), 0.f);
      y2[type].assign(size_t(T * rows[type]), 0.f);
      j1[type] = {&w[type], y1[type].data()};
      j2[type] = {&w[type], y2[type].data()};
    }
    one.matmul(x.data(), T, in, j1);
    two.matmul(x.data(), T, in, j2);
    for (int type = 0; type < 3; ++type) {
      ASSERT_EQ(0, std::memcmp(y1[type].data(), y2[type].data(), y1[type].size() * 4))
          << kTypeName[type] << " T " << T << ": 2 threads differ from 1";
      // The kernel on the whole product at once (the backend quantizes 512 rows at a time: the
      // activation blocks are per row, so the same codes).
      const Acts acts(x.data(), T, in);
      std::vector<float> yk(y1[type].size());
      gemm(type, acts.a, m[type], 0, rows[type], yk.data(), rows[type], cpu::quant_path_default());
      ASSERT_EQ(0, std::memcmp(y1[type].data(), yk.data(), yk.size() * 4)) << kTypeName[type] << " T " << T;
    }
  }
}

}  // namespace
}  // namespace retnet
