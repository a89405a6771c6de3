// The public logging switches: level filtering, a user callback receiving library warnings, and
// independence from the application's own spdlog.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "retnet/log.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

// Copies a fixture and appends an unused tensor to its safetensors file (the loader warns about it).
std::string fixture_with_extra_tensor() {
  namespace fs = std::filesystem;
  const fs::path dst = fs::temp_directory_path() / ("retnet_log_fixture_" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::copy(fixture_dir("ts_swish_scaled"), dst, fs::copy_options::recursive);
  std::ifstream in(dst / "model.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  std::string data = bytes.substr(8 + n);
  h["stray.extra.weight"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {data.size(), data.size() + 8}}};
  data.append(8, '\0');
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
  std::ofstream(dst / "model.safetensors", std::ios::binary) << out << header << data;
  return dst.string();
}

TEST(Log, CallbackReceivesWarningsAndLevelFilters) {
  const std::string dir = fixture_with_extra_tensor();
  std::vector<std::pair<LogLevel, std::string>> seen;
  set_log_callback([&](LogLevel l, std::string_view m) { seen.emplace_back(l, std::string(m)); });
  set_log_level(LogLevel::Warn);
  EXPECT_EQ(log_level(), LogLevel::Warn);
  Model::load(dir);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].first, LogLevel::Warn);
  EXPECT_NE(seen[0].second.find("not used"), std::string::npos) << seen[0].second;
  seen.clear();
  set_log_level(LogLevel::Error);  // warnings filtered out
  Model::load(dir);
  EXPECT_TRUE(seen.empty());
  set_log_callback({});
  set_log_level(LogLevel::Warn);
  std::filesystem::remove_all(dir);
}

// An application's own spdlog sink: collects the messages.
class CollectSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CollectSink(std::vector<std::string>& out) : out_(out) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& m) override { out_.emplace_back(m.payload.data(), m.payload.size()); }
  void flush_() override {}

 private:
  std::vector<std::string>& out_;
};

// spdlog is a private dependency, but the shared libspdlog (and its default logger) is one per
// process: an application logging with spdlog itself must keep its own logger, pattern and level
// whatever retnet's logging switches do, and must not receive retnet's messages (nor retnet its).
TEST(Log, LeavesTheApplicationsSpdlogAlone) {
  const std::string dir = fixture_with_extra_tensor();
  std::vector<std::string> app_seen, lib_seen;
  auto app_logger = std::make_shared<spdlog::logger>("app", std::make_shared<CollectSink>(app_seen));
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(app_logger);
  spdlog::set_level(spdlog::level::info);

  set_log_callback([&](LogLevel, std::string_view m) { lib_seen.emplace_back(m); });
  set_log_level(LogLevel::Error);  // retnet's level, not the application's
  EXPECT_EQ(spdlog::default_logger().get(), app_logger.get());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
  spdlog::info("application message");
  ASSERT_EQ(app_seen.size(), 1u);
  EXPECT_EQ(app_seen[0], "application message");
  EXPECT_TRUE(lib_seen.empty());

  set_log_level(LogLevel::Warn);
  Model::load(dir);  // warns about the unused tensor: to retnet's callback only
  EXPECT_EQ(app_seen.size(), 1u);
  ASSERT_EQ(lib_seen.size(), 1u);
  EXPECT_NE(lib_seen[0].find("not used"), std::string::npos) << lib_seen[0];

  set_log_callback({});
  spdlog::set_default_logger(previous);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace retnet::test
