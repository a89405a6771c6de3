// Reading the JSON files of a model directory (config.json, generation_config.json, tokenizer.json,
// tokenizer_config.json, model.safetensors.index.json). They are as untrusted as the weights, so
// their size and nesting depth are bounded before anything is built from them.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace retnet {

// Far above any real file (tokenizer.json nests about 6 levels, config.json about 4). nlohmann's
// parser is iterative, but copying, comparing or dumping a value recurses once per level, so a file
// of a million '[' would overflow the stack later, far from the parse; and it would first build a
// million nested values. The limit is checked on the text, before parsing.
inline constexpr int kMaxJsonNesting = 64;
// Tokenizers of large vocabularies are 10-30 MB and configs a few KB; a larger "JSON" file is
// broken or hostile, and would be read into memory whole.
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t(1) << 30;

// The whole file. Error "<path>: cannot open: <reason>", "<path>: is a directory, ...", or
// "<path>: is N bytes, over the limit of M for a JSON file".
std::string read_text_file(const std::string& path, uint64_t max_bytes = kMaxJsonFileBytes);

// Error "<path>: JSON nests deeper than N levels" when arrays/objects nest deeper than max_depth
// (brackets inside strings do not count). One linear pass, no recursion, no allocation.
void check_json_nesting(std::string_view text, const std::string& path, int max_depth = kMaxJsonNesting);

// check_json_nesting, then parse. Error "<path>: not valid JSON (<parser message>)".
nlohmann::json parse_json_text(std::string_view text, const std::string& path);

// read_text_file + parse_json_text.
nlohmann::json read_json_file(const std::string& path);

}  // namespace retnet
