// Test helper: a safetensors checkpoint's tensors read into memory and written back with a chosen
// layout, for tests that need a valid checkpoint with exactly one thing changed (an element, the
// alignment of the data section, a duplicate entry).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "model/safetensors.hpp"
#include "test_util.hpp"  // slurp_file

namespace retnet::test {

struct StTensor {
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  std::string bytes;
};
using StMap = std::map<std::string, StTensor>;

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << p;
}

inline StMap read_st(const std::filesystem::path& file) {
  SafetensorsFile f(file.string());
  StMap m;
  for (const auto& [name, t] : f.tensors())
    m[name] = {dtype_name(t.dtype), t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)};
  return m;
}

// The header JSON of a back-to-back layout of `tensors` (in name order), without the length prefix.
inline std::string st_header(const StMap& tensors) {
  nlohmann::json h = nlohmann::json::object();
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  return h.dump();
}

// A whole file: 8-byte little-endian length, `header` padded with trailing spaces so that the data
// section starts at a file offset ≡ data_mod (mod 8), then the data. The mapping is page-aligned,
// so data_mod 0 gives 8-byte aligned tensors (when their sizes keep it), 2 misaligns every F32
// tensor and 1 every 2-byte one.
inline std::string st_file_with_header(std::string header, const std::string& data, size_t data_mod = 0) {
  while ((8 + header.size()) % 8 != data_mod % 8) header += ' ';
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return len + header + data;
}

inline std::string st_data(const StMap& tensors) {
  std::string data;
  for (const auto& [name, t] : tensors) data += t.bytes;
  return data;
}

inline std::string st_file(const StMap& tensors, size_t data_mod = 0) {
  return st_file_with_header(st_header(tensors), st_data(tensors), data_mod);
}

}  // namespace retnet::test
