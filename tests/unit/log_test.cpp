// The public logging switches: level filtering and a user callback receiving library warnings.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace retnet::test
