// The shared enums and the weight-type traits table (src/common/types.hpp): the table's rows, the byte
// layout of block rows, the name mapping safetensors uses, and that every dispatch over weight types
// or public option enums refuses a value outside the enumerators with an Error instead of a default.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/kernels_cpu.hpp"
#include "common/dtype.hpp"
#include "common/public_types.hpp"
#include "retnet/error.hpp"
#include "retnet/retnet.hpp"
#include "test_util.hpp"

namespace retnet {
namespace {

using test::Contains;
using test::error_of;

// A value of an enum that no enumerator has: what a bad cast (or memory corruption) produces.
template <class E>
E bad_value() {
  return static_cast<E>(uint8_t(200));
}

TEST(WeightTypes, TableHasOneRowPerTypeInEnumeratorOrder) {
  struct Row {
    DType t;
    const char* name;
    int64_t elems, bytes, align;
  };
  for (const Row& r : {Row{DType::F32, "F32", 1, 4, 4}, Row{DType::F16, "F16", 1, 2, 2},
                       Row{DType::BF16, "BF16", 1, 2, 2}, Row{DType::Q8_0, "q8_0", 32, 34, 2},
                       Row{DType::Q4_0, "q4_0", 32, 18, 2}, Row{DType::Q4_K, "q4_k", 256, 144, 2}}) {
    const DTypeTraits& tr = dtype_traits(r.t);
    EXPECT_EQ(tr.type, r.t);
    EXPECT_STREQ(tr.name, r.name);
    EXPECT_STREQ(dtype_name(r.t), r.name);
    EXPECT_EQ(tr.block_elems, r.elems);
    EXPECT_EQ(tr.block_bytes, r.bytes);
    EXPECT_EQ(tr.align, r.align);
    EXPECT_EQ(dtype_row_bytes(r.t, 4096), uint64_t(4096 / r.elems * r.bytes));
    EXPECT_EQ(dtype_row_bytes(r.t, 0), 0u);
  }
  EXPECT_EQ(kDTypeCount, 6);
  EXPECT_EQ(dtype_name_list(), "F32, F16, BF16");
}

TEST(WeightTypes, BlockRowsAreWholeBlocks) {
  // The layouts the next weight types take (q8_0: 32 elements in 34 bytes; q4_k: 256 in 144), as rows
  // of the table would describe them: a row is whole blocks, a partial block takes a whole one.
  constexpr DTypeTraits q8{DType::F32, "Q8_0", 32, 34, 2};
  constexpr DTypeTraits q4k{DType::F32, "Q4_K", 256, 144, 2};
  static_assert(q8.row_bytes(4096) == 128 * 34);
  EXPECT_EQ(q8.row_bytes(64), 68u);
  EXPECT_EQ(q8.row_bytes(33), 68u);
  EXPECT_EQ(q8.row_bytes(32), 34u);
  EXPECT_EQ(q4k.row_bytes(4096), 16u * 144u);
  EXPECT_EQ(q4k.bytes(1), 144u);
}

TEST(WeightTypes, WeightRefRowsFollowTheTraits) {
  std::vector<uint8_t> buf(3 * 10 * 2);
  const WeightRef w{buf.data(), DType::BF16, 3, 10};
  EXPECT_EQ(w.row_bytes(), 20u);
  EXPECT_EQ(w.bytes(), 60u);
  EXPECT_EQ(w.row(2), buf.data() + 40);
  const WeightRef f{buf.data(), DType::F32, 1, 15};
  EXPECT_EQ(f.bytes(), 60u);
}

TEST(WeightTypes, NamesMapBothWays) {
  for (const DTypeTraits& t : kDTypeTraits) {
    const auto d = dtype_from_name(t.name);
    if (dtype_is_block(t.type)) {  // stored as U8 with metadata, never a safetensors dtype of its own
      EXPECT_FALSE(d.has_value()) << t.name;
      continue;
    }
    ASSERT_TRUE(d.has_value()) << t.name;
    EXPECT_EQ(*d, t.type);
  }
  EXPECT_FALSE(dtype_from_name("f32").has_value());  // safetensors' spelling only
  EXPECT_FALSE(dtype_from_name("F64").has_value());
  EXPECT_FALSE(dtype_from_name("").has_value());
}

TEST(WeightTypes, ElementsRoundTripThroughEveryType) {
  const std::vector<float> v = {0.f, -1.5f, 3.140625f, 65504.f, -2.0e-3f};
  for (const DTypeTraits& t : kDTypeTraits) {
    if (dtype_is_block(t.type)) continue;  // whole rows only: quant_test.cpp
    std::vector<uint8_t> b(dtype_traits(t.type).bytes(v.size()));
    for (size_t i = 0; i < v.size(); ++i) store_from_f32(b.data(), t.type, i, v[i]);
    std::vector<float> wide(v.size());
    cpu::widen_row(b.data(), t.type, int64_t(v.size()), wide.data());
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(load_as_f32(b.data(), t.type, i), wide[i]) << t.name << " " << i;
      EXPECT_NEAR(wide[i], v[i], std::abs(v[i]) * 1e-2f) << t.name << " " << i;
    }
  }
}

TEST(WeightTypes, EveryDispatchRefusesAValueOutsideTheEnumerators) {
  const DType bad = bad_value<DType>();
  float f = 0.f;
  uint8_t b[16] = {};
  EXPECT_TRUE(Contains(error_of([&] { load_as_f32(b, bad, 0); }), "load_as_f32: weight type code 200"));
  EXPECT_TRUE(Contains(error_of([&] { store_from_f32(b, bad, 0, 1.f); }), "store_from_f32: weight type code 200"));
  EXPECT_TRUE(Contains(error_of([&] { cpu::widen_row(b, bad, 1, &f); }), "widen_row: weight type code 200"));
  std::vector<float> scratch;
  const WeightRef w{b, bad, 1, 1};
  EXPECT_TRUE(Contains(error_of([&] { cpu::gemv_rows(&f, 1, 1, w, 0, 1, &f, 1, scratch); }), "gemv_rows"));
  int calls = 0;
  EXPECT_EQ(visit_dtype(
                bad, [&](auto) { return ++calls; }, [] { return -1; }),
            -1);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(visit_dtype(
                DType::F16, [](auto d) { return int(decltype(d)::value); }, [] { return -1; }),
            1);
}

TEST(PublicEnums, MapOntoTheInternalOnesAndRefuseOthers) {
  EXPECT_EQ(device_kind(Device::Auto), DeviceKind::Auto);
  EXPECT_EQ(device_kind(Device::Cpu), DeviceKind::Cpu);
  EXPECT_EQ(device_kind(Device::Cuda), DeviceKind::Cuda);
  EXPECT_EQ(angle_mode(Angles::Reference), AngleMode::Reference);
  EXPECT_EQ(angle_mode(Angles::Exact), AngleMode::Exact);
  LoadOptions lo;
  lo.device = bad_value<Device>();
  EXPECT_TRUE(Contains(error_of([&] { Model::load(test::fixture_dir("ts_swish_scaled"), lo); }),
                       "LoadOptions::device: value 200 is not auto, cpu or cuda"));
  lo.device = Device::Cpu;
  lo.threads = 1;
  lo.angles = bad_value<Angles>();
  EXPECT_TRUE(Contains(error_of([&] { Model::load(test::fixture_dir("ts_swish_scaled"), lo); }),
                       "LoadOptions::angles: value 200 is not reference or exact"));
}

}  // namespace
}  // namespace retnet
