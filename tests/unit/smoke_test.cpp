#include <gtest/gtest.h>
#include "common/dtype.hpp"
TEST(DType, Bf16RoundTrip) { EXPECT_EQ(retnet::bf16_to_f32(retnet::f32_to_bf16(1.5f)), 1.5f); }
