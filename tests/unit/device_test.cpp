// Device selection (make_backend, backend.cpp): auto runs on CUDA exactly when this build has CUDA and
// a device is present, else on the CPU; an explicit cuda without a device is a clear error.
#include <gtest/gtest.h>

#include "backend/backend.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

LoadOptions on(Device d) {
  LoadOptions lo;
  lo.device = d;
  lo.threads = 1;
  return lo;
}

TEST(DeviceSelection, AutoPicksCudaOnlyWithADevice) {
  auto model = Model::load(fixture_dir("ts_swish_scaled"), on(Device::Auto));
  const std::string& device = model->info().device;
  if (cuda_available()) EXPECT_EQ(device.rfind("cuda (", 0), 0u) << device;
  else EXPECT_EQ(device, "cpu");
  // Whatever was picked computes the same logits as the CPU backend.
  const auto ids = golden_ids("ts_swish_scaled");
  auto cpu = Model::load(fixture_dir("ts_swish_scaled"), on(Device::Cpu));
  EXPECT_LE(rel_err(run_logits(model, ids, Mode::Chunkwise), run_logits(cpu, ids, Mode::Chunkwise)), 2e-5);
}

TEST(DeviceSelection, CudaWithoutADeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  try {
    Model::load(fixture_dir("ts_swish_scaled"), on(Device::Cuda));
    FAIL() << "--device cuda loaded without a device";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("device 'cuda': ", 0), 0u) << what;
    EXPECT_TRUE(what.find("no CUDA device is available") != std::string::npos ||
                what.find("this build has no CUDA support") != std::string::npos)
        << what;
    EXPECT_NE(what.find("--device cpu"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace retnet::test
