// safetensors reader: one file memory-mapped, or a sharded set described by model.safetensors.index.json.
// Nothing in the file is trusted: every header field is validated before a byte of data is used.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/mapped_file.hpp"

namespace retnet {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the file mapping
  size_t nbytes = 0;
  std::string file;  // path of the file holding it (for messages)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string shape_str() const;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error naming path and the bad field
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  std::map<std::string, TensorInfo> tensors_;
};

// Parses a header (the JSON text after the 8-byte length) against a data section of data_size bytes.
// Exposed for tests and fuzzing. data_base may be null when only validating.
std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& path, const char* json,
                                                           size_t json_len, const uint8_t* data_base,
                                                           size_t data_size);

// Parses a whole safetensors file image (8-byte little-endian header length, header, data section)
// held in memory; the returned tensors point into `bytes`. SafetensorsFile does this on its mapping;
// exposed so that tests and the fuzz target check the same validation without a file.
std::map<std::string, TensorInfo> parse_safetensors_bytes(const std::string& path, const uint8_t* bytes,
                                                          size_t size);

// All weight files of a model directory.
class TensorStore {
 public:
  // dir/model.safetensors, or dir/model.safetensors.index.json with its shards.
  static TensorStore open_dir(const std::string& dir);

  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  const std::map<std::string, const TensorInfo*>& all() const { return index_; }
  uint64_t total_bytes() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

}  // namespace retnet
