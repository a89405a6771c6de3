// What the CPU quantized-kernel tests (quant_gemv_test, quant_gemm_test) share: the type names, an
// fp16 writer, quantized activations, and the fixture that runs a test once per kernel path,
// skipping paths this build or CPU lacks.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/quant_gemv.hpp"
#include "common/dtype.hpp"

namespace retnet::quant_test {

inline const char* const kTypeName[3] = {"q8_0", "q4_0", "q4_k"};

inline void put16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// x [T, in] quantized to int8 blocks of 32 (the kernels' activation format), owning its bytes.
struct Acts {
  std::vector<uint8_t> buf;
  cpu::QuantActs a;
  Acts(const float* x, int64_t T, int64_t in) : buf(cpu::quant_acts_bytes(T, in)) {
    a = cpu::quantize_acts(x, T, in, buf.data());
  }
};

class QuantPathTest : public ::testing::TestWithParam<cpu::QuantPath> {
 protected:
  void SetUp() override {
    if (!cpu::quant_path_supported(GetParam()))
      GTEST_SKIP() << "the " << cpu::quant_path_name(GetParam()) << " path is not in this build or CPU";
  }
};

// INSTANTIATE_TEST_SUITE_P's name generator: the path's name with '-' made '_'.
inline std::string path_param_name(const ::testing::TestParamInfo<cpu::QuantPath>& info) {
  std::string n = cpu::quant_path_name(info.param);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

}  // namespace retnet::quant_test
