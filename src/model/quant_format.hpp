// How a quantized model directory stores its block-typed matrices in safetensors (docs/library.md,
// "Quantized models"): each one is a U8 tensor [rows, row_bytes] of whole blocks, and the header's
// __metadata__ names its type and logical shape:
//   "retnet.quant_version": "1",
//   "retnet.quant": "{\"<tensor name>\": [\"q4_0\", rows, cols], ...}"   (JSON text in a string:
//   safetensors metadata values are strings).
// Any other tool reads the file as plain safetensors (U8 tensors); this engine maps the bytes in place.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "common/types.hpp"

namespace retnet {

inline constexpr const char* kQuantMetaKey = "retnet.quant";
inline constexpr const char* kQuantVersionKey = "retnet.quant_version";
inline constexpr int kQuantFormatVersion = 1;

struct QuantEntry {
  DType type = DType::Q8_0;    // a block type
  int64_t rows = 0, cols = 0;  // logical shape; cols a multiple of the type's block
};

// The entries of a header's "retnet.quant" value (text) and "retnet.quant_version" (version, or null
// when absent). Throws Error naming `path` for malformed JSON, a missing or unsupported version, an
// unknown type, a bad shape or cols that are not a multiple of the type's block.
std::map<std::string, QuantEntry> parse_quant_metadata(const std::string& path, const std::string& text,
                                                       const std::string* version);

// The "retnet.quant" value for these entries (parse_quant_metadata reads it back).
std::string quant_metadata_text(const std::map<std::string, QuantEntry>& entries);

}  // namespace retnet
