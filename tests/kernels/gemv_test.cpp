// The decode GEMV against the CPU backend's matmul (which takes its own GEMV path for T ≤ 8), for
// every weight type, T = 1..8, widths that are and are not multiples of 8 (misaligned rows), a
// misaligned base pointer, and an output row stride larger than the row count.
// Tolerance: both accumulate in fp32 in different orders (8-wide FMA lanes vs 32 lanes × 128-bit
// chunks + a butterfly); relative to max|y| (≈ √in·|w||x| for random data) the difference is
// ≲ 2^-24·√in·few ≈ 1e-6 for in ≤ 1024 (measured ≤ 3.2e-7); 5e-6 leaves margin. Weights are widened exactly by both.
#include "kernel_test_util.hpp"

namespace {

using namespace ktest;
using retnet::DType;

void check_gemv(DType t, int64_t T, int64_t in, int64_t rows, size_t misalign_elems) {
  retnet::CpuBackend cpu(1);
  const std::vector<float> wf = randu(size_t(rows * in) + misalign_elems, uint32_t(in * 31 + rows), -1.f, 1.f);
  const TypedWeights w = make_weights(wf, t);
  const size_t off = retnet::dtype_traits(t).bytes(misalign_elems);
  const std::vector<float> x = randu(size_t(T * in), 17, -2.f, 2.f);
  const int64_t ldy = rows + 3;
  std::vector<float> want(size_t(T * ldy), -7.f);
  {
    retnet::WeightRef ref{w.bytes.data() + off, t, rows, in};
    // CPU reference computes contiguous rows; spread into the strided layout.
    std::vector<float> y(size_t(T * rows));
    retnet::Backend::MatmulJob job{&ref, y.data()};
    cpu.matmul(x.data(), T, in, std::span<const retnet::Backend::MatmulJob>(&job, 1));
    for (int64_t i = 0; i < T; ++i)
      std::copy(y.begin() + i * rows, y.begin() + (i + 1) * rows, want.begin() + i * ldy);
  }
  const std::vector<float> got = run_checked([&] {
    DevBuf<uint8_t> dw(w.bytes);
    DevBuf<float> dx(x), dy(std::vector<float>(size_t(T * ldy), -7.f));
    expect_ok(retnet::launch_gemv(dx.get(), T, in, dw.get() + off, t, rows, dy.get(), ldy, nullptr));
    return dy.download();
  });
  EXPECT_LE(rel_err(got, want), 5e-6) << retnet::dtype_name(t) << " T=" << T << " in=" << in << " rows=" << rows
                                      << " misalign=" << misalign_elems;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(got[size_t(i * ldy + r)], -7.f) << "wrote into the row gap";
}

KTEST(Gemv, AllTypesRowsAndWidths) {
  KTEST_REQUIRE_DEVICE();
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t T : {1, 2, 3, 5, 8})
      for (int64_t in : {8, 13, 64, 100, 257})
        for (int64_t rows : {1, 9, 70}) check_gemv(t, T, in, rows, 0);
}

KTEST(Gemv, MisalignedBaseAndWideRows) {
  KTEST_REQUIRE_DEVICE();
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (size_t mis : {size_t(1), size_t(3)}) {
      check_gemv(t, 1, 1024, 17, mis);
      check_gemv(t, 4, 96, 33, mis);
      check_gemv(t, 7, 31, 8, mis);
    }
}

KTEST(Gemv, RejectsTooManyRows) {
  KTEST_REQUIRE_DEVICE();
  DevBuf<float> x(16), y(16), w(16);
  EXPECT_EQ(
      retnet::launch_gemv(x.get(), retnet::kGemvMaxRows + 1, 2, w.get(), retnet::DType::F32, 2, y.get(), 2, nullptr),
      cudaErrorInvalidValue);
}

}  // namespace
