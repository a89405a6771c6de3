// quantize_model (retnet/quantize.hpp): a model directory in, a quantized model directory out, written
// whole under a temporary name and renamed into place. The format is model/quant_format.hpp's.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "common/json_file.hpp"
#include "common/dtype.hpp"
#include "common/quant.hpp"
#include "model/family.hpp"
#include "model/model_desc.hpp"
#include "model/quant_format.hpp"
#include "model/quantize_plan.hpp"
#include "model/weight_binder.hpp"
#include "retnet/atomic_write.hpp"
#include "retnet/error.hpp"
#include "retnet/quantize.hpp"
#include "retnet/system.hpp"  // kMaxThreads

namespace retnet {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One tensor of an output file: its header entry and its bytes (in the input's mapping, or owned).
struct OutTensor {
  std::string name;
  std::string dtype;  // safetensors dtype ("U8" for a quantized matrix)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int align = 1;  // 4 for F32: placed first so that its offset stays 4-aligned
};

// The files of a model directory that are not weights: configuration and tokenizer.
bool copied_file(const std::string& name) {
  static const char* const kNames[] = {
      "config.json", "generation_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
      "merges.txt"};
  for (const char* n : kNames)
    if (name == n) return true;
  return name.rfind("tokenizer", 0) == 0;  // tokenizer.json, tokenizer_config.json, tokenizer.model
}

// The directory a path finally names: symbolic links followed (a chain, relative or absolute), as
// write_file_atomically does for files; the path itself when it is not a link.
fs::path resolve_links(fs::path p) {
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return p;
    fs::path t = fs::read_symlink(p, ec);
    if (ec) throw Error(p.string() + ": cannot read the symbolic link: " + ec.message());
    p = t.is_absolute() ? t : p.parent_path() / t;
  }
  throw Error(p.string() + ": too many levels of symbolic links");
}

// The bytes of one safetensors file: 8-byte header length, header (padded with spaces to a multiple
// of 8, so that the data section starts 8-aligned), then the tensors in order, without gaps (as the
// safetensors reference implementation requires). Every tensor's size is a multiple of 2 (blocks are
// 34, 18 and 144 bytes) and F32 tensors come first, so every offset keeps its type's alignment.
std::string file_header(std::vector<OutTensor>& ts, const std::map<std::string, QuantEntry>& quant) {
  std::stable_sort(ts.begin(), ts.end(), [](const OutTensor& a, const OutTensor& b) { return a.align > b.align; });
  json h = json::object();
  uint64_t off = 0;
  for (const OutTensor& t : ts) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  json meta = {{"format", "pt"}};
  if (!quant.empty()) {
    meta[kQuantVersionKey] = std::to_string(kQuantFormatVersion);
    meta[kQuantMetaKey] = quant_metadata_text(quant);
  }
  h["__metadata__"] = meta;
  std::string text = h.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  return out + text;
}

}  // namespace

QuantizeResult quantize_model(const std::string& in_dir, const std::string& out_dir, const QuantizeOptions& options) {
  const std::optional<DType> type = quant_type_from_name(options.type);
  if (!type) throw Error("type: '" + options.type + "' is not one of " + quant_type_names());
  const std::set<std::string> keep = parse_quant_keep(options.keep, "keep");
  const std::optional<DType> head = parse_head_type(options.head_type, *type, "head_type");
  if (out_dir.empty()) throw Error("output: empty path");
  if (options.threads < 0 || options.threads > kMaxThreads)
    throw Error("threads: must be in [0, " + std::to_string(kMaxThreads) + "], got " + std::to_string(options.threads));

  // Where the result goes, checked before anything is read.
  const fs::path target = resolve_links(fs::path(out_dir));
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(target, ec));
  if (exists) {
    if (!options.force) throw Error(out_dir + ": already exists (--force replaces it)");
    if (!fs::is_directory(target, ec)) throw Error(out_dir + ": exists and is not a directory; not replacing it");
    if (fs::equivalent(target, fs::path(in_dir), ec))
      throw Error(out_dir + ": is the input directory; write the quantized model somewhere else");
  }
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  if (!fs::is_directory(parent, ec))
    throw Error(out_dir + ": its parent directory " + parent.string() + " does not exist");

  // The input, bound in a dry run (names and shapes checked; the slots say which tensor plays which role).
  ModelDesc m = open_model_desc(in_dir, "", "");
  WeightBinder dry(m, in_dir);
  dry.dry_ = true;
  family_of(m.cfg.family).bind(m, dry);
  const QuantPlan plan = plan_quantization(m, dry.used_tensors(), *type, keep, head);

  QuantizeResult res;
  res.notes = plan.notes;
  uint64_t total = 0, done = 0;
  for (const auto& [name, t] : m.store.all()) total += t->nbytes;
  auto progress = [&](uint64_t n) {
    done += n;
    if (options.on_progress && !options.on_progress(done, total)) throw Error(in_dir + ": quantize cancelled");
  };
  progress(0);

  // Output files named as the input's (one model.safetensors, or its shards).
  std::map<std::string, std::vector<OutTensor>> files;
  std::map<std::string, std::map<std::string, QuantEntry>> quant;
  std::vector<std::vector<uint8_t>> owned;
  for (const auto& [name, t] : m.store.all()) {
    const std::string file = fs::path(t->file).filename().string();
    OutTensor o{name, dtype_name(t->dtype), t->shape, t->data, t->nbytes, t->dtype == DType::F32 ? 4 : 2};
    if (const auto q = plan.quantize.find(t); q != plan.quantize.end()) {
      const int64_t rows = t->shape[0], cols = t->shape[1];
      const size_t rb = size_t(dtype_row_bytes(q->second, cols)), src_rb = size_t(dtype_row_bytes(t->dtype, cols));
      std::vector<uint8_t>& buf = owned.emplace_back(size_t(rows) * rb);
      int64_t reported = 0;  // rows counted in the progress so far
      // Plain references, not the structured bindings: clang 14 cannot capture those in a lambda.
      const std::string& tensor_name = name;
      const std::string& tensor_file = t->file;
      quantize_rows(
          q->second, t->dtype, t->data, rows, cols, buf.data(),
          [&](int64_t r) { return tensor_file + ": tensor '" + tensor_name + "' row " + std::to_string(r); },
          options.threads,
          [&](int64_t done_rows) {
            progress(size_t(done_rows - reported) * src_rb);
            reported = done_rows;
          });
      o.dtype = "U8";
      o.shape = {rows, int64_t(rb)};
      o.data = buf.data();
      o.nbytes = buf.size();
      o.align = 2;
      quant[file][name] = QuantEntry{q->second, rows, cols};
      ++res.quantized;
    } else {
      if (dtype_is_block(t->dtype)) {  // already quantized: stored again as it is, with its entry
        quant[file][name] = QuantEntry{t->dtype, t->shape[0], t->shape[1]};
        o.dtype = "U8";
        o.shape = {t->shape[0], int64_t(dtype_row_bytes(t->dtype, t->shape[1]))};
        o.align = 2;
      }
      progress(t->nbytes);
      ++res.copied;
    }
    res.bytes_in += t->nbytes;
    res.bytes_out += o.nbytes;
    files[file].push_back(std::move(o));
  }

  // Everything is written into a temporary directory beside the target, then renamed into place.
  std::random_device rd;
  const fs::path tmp = parent / ("." + target.filename().string() + ".tmp-" + std::to_string(rd()));
  if (!fs::create_directory(tmp, ec)) throw Error(out_dir + ": cannot create a directory beside it: " + ec.message());
  try {
    json weight_map = json::object();
    for (auto& [file, ts] : files) {
      const std::string head = file_header(ts, quant[file]);
      std::vector<std::span<const uint8_t>> parts;
      parts.emplace_back(reinterpret_cast<const uint8_t*>(head.data()), head.size());
      for (const OutTensor& t : ts) {
        parts.emplace_back(t.data, t.nbytes);
        weight_map[t.name] = file;
      }
      write_file_atomically((tmp / file).string(), parts, "quantized weights");
    }
    if (fs::exists(fs::path(in_dir) / "model.safetensors.index.json")) {
      const std::string idx = json{{"metadata", {{"total_size", res.bytes_out}}}, {"weight_map", weight_map}}.dump(2);
      write_file_atomically((tmp / "model.safetensors.index.json").string(),
                            std::span(reinterpret_cast<const uint8_t*>(idx.data()), idx.size()), "index");
    }
    for (const fs::directory_entry& e : fs::directory_iterator(in_dir)) {
      const std::string name = e.path().filename().string();
      if (!copied_file(name) || !e.is_regular_file()) continue;
      const std::string bytes = read_text_file(e.path().string(), uint64_t(1) << 32);
      write_file_atomically((tmp / name).string(),
                            std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), name);
    }
    if (exists) {  // the old directory moves aside, the new one in, then the old one goes
      const fs::path old = parent / ("." + target.filename().string() + ".old-" + std::to_string(rd()));
      fs::rename(target, old);
      fs::rename(tmp, target);
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, target);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(out_dir + ": cannot write the quantized model: " + e.code().message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return res;
}

}  // namespace retnet
