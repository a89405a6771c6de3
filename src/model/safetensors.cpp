#include "model/safetensors.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/json_file.hpp"
#include "model/quant_format.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Headers of real checkpoints are well under a megabyte per thousand tensors; 100 MB is the
// limit the reference Rust implementation uses too. Anything larger is hostile or broken.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int kMaxJsonDepth = 16;

bool known_unsupported_dtype(const std::string& s) {
  static const std::set<std::string> k = {"F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
                                          "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"};
  return k.count(s) > 0;
}

// Parses JSON with a nesting limit and rejects duplicate keys in any object (nlohmann would silently
// keep the last one, which could hide a second, different definition of a tensor in a header, or a
// tensor mapped to two shards in an index's weight_map).
json parse_json_checked(const std::string& path, const char* text, size_t len, const char* what) {
  check_json_nesting(std::string_view(text, len), path, kMaxJsonDepth);  // before building anything
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string dup;
  bool too_deep = false;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth > kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    // Objects within the depth limit are kept, so every object_start here gets its object_end.
    if (ev == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == json::parse_event_t::key && !keys.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, text + len, cb, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    throw Error(path + ": " + what + " is not valid JSON (" + e.what() + ")");
  }
  if (too_deep) throw Error(path + ": " + what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (!dup.empty()) throw Error(path + ": " + what + " defines '" + dup + "' twice");
  return j;
}

}  // namespace

std::string TensorInfo::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& path, const char* text,
                                                           size_t len, const uint8_t* data_base,
                                                           size_t data_size) {
  json j = parse_json_checked(path, text, len, "safetensors header");
  if (!j.is_object()) throw Error(path + ": safetensors header is not a JSON object");

  std::map<std::string, TensorInfo> out;
  struct Span {
    uint64_t b, e;
    const std::string* name;
  };
  std::vector<Span> spans;
  // Block-quantized matrices: U8 tensors whose type and logical shape the metadata gives.
  std::map<std::string, QuantEntry> quant;
  if (auto meta = j.find("__metadata__"); meta != j.end() && meta->is_object()) {
    auto q = meta->find(kQuantMetaKey);
    if (q != meta->end()) {
      if (!q->is_string()) throw Error(path + ": __metadata__ '" + kQuantMetaKey + "' is not a string");
      auto v = meta->find(kQuantVersionKey);
      std::string version;
      if (v != meta->end()) {
        if (!v->is_string()) throw Error(path + ": __metadata__ '" + kQuantVersionKey + "' is not a string");
        version = v->get<std::string>();
      }
      quant = parse_quant_metadata(path, q->get<std::string>(), v != meta->end() ? &version : nullptr);
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it.value().is_object()) throw Error(path + ": __metadata__ is not an object");
      continue;
    }
    const json& e = it.value();
    const std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object()) throw Error(where + ": entry is not an object");
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto off = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) throw Error(where + ": missing or non-string 'dtype'");
    if (sh == e.end() || !sh->is_array()) throw Error(where + ": missing or non-array 'shape'");
    if (off == e.end() || !off->is_array() || off->size() != 2) throw Error(where + ": 'data_offsets' must be [begin, end]");
    TensorInfo t;
    t.name = name;
    t.file = path;
    const std::string dts = dt->get<std::string>();
    const auto qe = quant.find(name);
    if (qe != quant.end()) {
      if (dts != "U8")
        throw Error(where + ": the quantization metadata names it, but its dtype is " + dts + ", not U8");
      t.dtype = qe->second.type;
    } else if (const std::optional<DType> d = dtype_from_name(dts)) {
      t.dtype = *d;
    } else {
      if (known_unsupported_dtype(dts))
        throw Error(where + ": dtype " + dts + " is not supported (" + dtype_name_list() + " are)");
      throw Error(where + ": unknown dtype '" + dts + "'");
    }
    if (sh->size() > 8) throw Error(where + ": shape has more than 8 dimensions");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) throw Error(where + ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40) || (v && numel > std::numeric_limits<uint64_t>::max() / v / 8))
        throw Error(where + ": shape " + sh->dump() + " is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    if (qe != quant.end()) {
      // Stored as [rows, row_bytes] bytes; from here on the tensor is its logical [rows, cols] of blocks.
      const QuantEntry& q = qe->second;
      const uint64_t row_bytes = dtype_row_bytes(q.type, q.cols);
      if (t.shape != std::vector<int64_t>{q.rows, int64_t(row_bytes)})
        throw Error(where + ": U8 shape " + t.shape_str() + " does not hold " + dtype_name(q.type) + " [" +
                    std::to_string(q.rows) + ", " + std::to_string(q.cols) + "], which needs [" +
                    std::to_string(q.rows) + ", " + std::to_string(row_bytes) + "] (" +
                    std::to_string(q.cols / dtype_traits(q.type).block_elems) + " blocks of " +
                    std::to_string(dtype_traits(q.type).block_bytes) + " bytes per row)");
      t.shape = {q.rows, q.cols};
      numel = uint64_t(q.rows) * uint64_t(q.cols);
    }
    const json& b = (*off)[0];
    const json& en = (*off)[1];
    if (!b.is_number_unsigned() || !en.is_number_unsigned())
      throw Error(where + ": data_offsets must be non-negative integers");
    uint64_t ob = b.get<uint64_t>(), oe = en.get<uint64_t>();
    if (ob > oe) throw Error(where + ": data_offsets begin " + std::to_string(ob) + " > end " + std::to_string(oe));
    if (oe > data_size)
      throw Error(where + ": data_offsets end " + std::to_string(oe) + " is past the data section (" +
                  std::to_string(data_size) + " bytes; file truncated?)");
    // Rows of whole blocks along the last dimension (a 0-d tensor is one row of one element).
    const uint64_t cols = t.shape.empty() ? 1 : uint64_t(t.shape.back());
    uint64_t expect = cols ? numel / cols * dtype_traits(t.dtype).row_bytes(int64_t(cols)) : 0;
    if (oe - ob != expect)
      throw Error(where + ": data_offsets span " + std::to_string(oe - ob) + " bytes but shape " + sh->dump() + " x " +
                  dts + " needs " + std::to_string(expect) +
                  (qe != quant.end() ? std::string(" (") + dtype_name(t.dtype) + " blocks; wrong block count?)" : ""));
    t.nbytes = size_t(expect);
    t.data = data_base ? data_base + ob : nullptr;
    auto [pos, inserted] = out.emplace(name, std::move(t));
    spans.push_back({ob, oe, &pos->first});
  }
  for (const auto& [name, q] : quant)
    if (!out.count(name))
      throw Error(path + ": __metadata__ '" + kQuantMetaKey + "' names tensor '" + name + "', which the file lacks");
  // Zero-sized tensors hold no bytes and cannot overlap anything; every other span is checked
  // against the earlier span that reaches furthest (not only its sorted neighbour).
  spans.erase(std::remove_if(spans.begin(), spans.end(), [](const Span& s) { return s.e == s.b; }), spans.end());
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b; });
  size_t far = 0;
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].b < spans[far].e)
      throw Error(path + ": tensors '" + *spans[far].name + "' and '" + *spans[i].name + "' overlap in the data section");
    if (spans[i].e > spans[far].e) far = i;
  }
  return out;
}

std::map<std::string, TensorInfo> parse_safetensors_bytes(const std::string& path, const uint8_t* bytes,
                                                          size_t size) {
  if (size < 8) throw Error(path + ": file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) throw Error(path + ": header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > size - 8)
    throw Error(path + ": header length " + std::to_string(n) + " runs past the end of the file (" +
                std::to_string(size) + " bytes)");
  if (n == 0) throw Error(path + ": empty safetensors header");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  return parse_safetensors_header(path, text, size_t(n), bytes + 8 + n, size - 8 - size_t(n));
}

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  tensors_ = parse_safetensors_bytes(path, map_.data(), map_.size());
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore st;
  fs::path d(dir);
  std::error_code ec;
  if (!fs::exists(d, ec)) throw Error(dir + ": model directory does not exist");
  if (!fs::is_directory(d, ec)) throw Error(dir + ": is not a directory (expected a model directory)");
  fs::path single = d / "model.safetensors";
  fs::path index = d / "model.safetensors.index.json";
  // exists() says false for a file it may not look at (a directory without search permission):
  // report that as what it is instead of "missing".
  auto present = [&](const fs::path& p) {
    const fs::file_status s = fs::status(p, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) throw Error(p.string() + ": cannot access: " + ec.message());
    return fs::exists(s);
  };
  if (present(index)) {
    const std::string text = read_text_file(index.string());  // bounded; errors carry the reason
    json j = parse_json_checked(index.string(), text.data(), text.size(), "index");
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": missing 'weight_map' object");
    std::map<std::string, SafetensorsFile*> opened;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        throw Error(index.string() + ": shard name '" + shard + "' must be a plain file name in the model directory");
      if (!opened.count(shard)) {
        fs::path sp = d / shard;
        if (!present(sp)) throw Error(index.string() + ": shard '" + shard + "' named in weight_map is missing");
        st.files_.push_back(std::make_unique<SafetensorsFile>(sp.string()));
        opened[shard] = st.files_.back().get();
      }
      const auto& ts = opened[shard]->tensors();
      auto t = ts.find(it.key());
      if (t == ts.end())
        throw Error(index.string() + ": tensor '" + it.key() + "' is mapped to '" + shard + "' but that shard lacks it");
      st.index_[it.key()] = &t->second;
    }
    // A tensor stored in two shards is ambiguous (transformers loads every tensor of every shard, so
    // which copy wins depends on the order it reads them): refuse it, naming both files.
    for (const auto& [shard, file] : opened)
      for (const auto& [name, t] : file->tensors()) {
        const auto mapped = st.index_.find(name);
        if (mapped != st.index_.end() && mapped->second != &t)
          throw Error(index.string() + ": tensor '" + name + "' is stored in both '" + shard + "' and '" +
                      fs::path(mapped->second->file).filename().string() + "'");
      }
  } else if (present(single)) {
    st.files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& [name, t] : st.files_.back()->tensors()) st.index_[name] = &t;
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json in the model directory");
  }
  return st;
}

const TensorInfo* TensorStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

uint64_t TensorStore::total_bytes() const {
  uint64_t s = 0;
  for (const auto& [n, t] : index_) s += t->nbytes;
  return s;
}

}  // namespace retnet
