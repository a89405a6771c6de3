#include "tokenizer/bpe.hpp"

#include <nlohmann/json.hpp>
#include <queue>

#include "retnet/error.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

constexpr int64_t kMaxId = (int64_t(1) << 24) - 1;

// Splits a legacy "a b" merge; the Rust library requires exactly one space.
std::pair<std::string, std::string> split_merge(const std::string& s, size_t rank, const std::string& ctx) {
  const size_t sp = s.find(' ');
  if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
    throw Error(ctx + ": merge #" + std::to_string(rank) + " \"" + s + "\" is not two tokens separated by one space");
  return {s.substr(0, sp), s.substr(sp + 1)};
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::parse(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": \"model\" must be an object");
  const auto type = j.find("type");
  if (type != j.end()) {
    if (!type->is_string()) throw Error(where + ": model \"type\" must be a string");
    if (type->get<std::string>() != "BPE")
      throw Error(where + ": unsupported model type '" + type->get<std::string>() + "' (only BPE is supported)");
  } else if (!j.contains("merges")) {
    throw Error(where + ": model has no \"type\" (only BPE is supported)");
  }
  const std::string ctx = where + ": model";
  auto m = std::make_unique<BpeModel>();

  const auto dropout = j.find("dropout");
  if (dropout != j.end() && !dropout->is_null() && !(dropout->is_number() && dropout->get<double>() == 0.0))
    throw Error(ctx + ": dropout " + dropout->dump() + " is not supported (must be null: encoding is deterministic)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = j.find(key);
    if (it != j.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      throw Error(ctx + ": " + key + " " + it->dump() + " is not supported (must be null)");
  }
  m->fuse_unk_ = json_bool(j, "fuse_unk", false, ctx);
  m->byte_fallback_ = json_bool(j, "byte_fallback", false, ctx);
  m->ignore_merges_ = json_bool(j, "ignore_merges", false, ctx);
  const auto unk = j.find("unk_token");
  if (unk != j.end() && !unk->is_null()) {
    if (!unk->is_string()) throw Error(ctx + ": \"unk_token\" must be a string or null");
    m->has_unk_ = true;
    m->unk_token_ = unk->get<std::string>();
  }

  const auto vocab = j.find("vocab");
  if (vocab == j.end() || !vocab->is_object()) throw Error(ctx + ": \"vocab\" must be an object of token -> id");
  int64_t max_id = -1;
  m->vocab_.reserve(vocab->size());
  for (const auto& [token, idj] : vocab->items()) {
    if (!idj.is_number_integer()) throw Error(ctx + ": vocab id of token \"" + token + "\" is not an integer");
    const int64_t id = idj.get<int64_t>();
    if (id < 0 || id > kMaxId)
      throw Error(ctx + ": vocab id " + std::to_string(id) + " of token \"" + token + "\" is out of range [0, 2^24)");
    m->vocab_.emplace(token, int32_t(id));
    max_id = std::max(max_id, id);
  }
  // Ids index a table, so reject files whose ids leave most of it empty.
  if (max_id > 2 * int64_t(m->vocab_.size()) + 65536)
    throw Error(ctx + ": vocab ids are sparse (max id " + std::to_string(max_id) + " for " +
                std::to_string(m->vocab_.size()) + " tokens)");
  m->tokens_.resize(size_t(max_id + 1));
  m->has_token_.assign(size_t(max_id + 1), 0);
  for (const auto& [token, id] : m->vocab_) {
    if (m->has_token_[size_t(id)])
      throw Error(ctx + ": vocab id " + std::to_string(id) + " is used by both \"" + m->tokens_[size_t(id)] +
                  "\" and \"" + token + "\"");
    m->has_token_[size_t(id)] = 1;
    m->tokens_[size_t(id)] = token;
  }
  if (m->has_unk_) {
    const auto it = m->vocab_.find(m->unk_token_);
    if (it != m->vocab_.end()) m->unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    static const char* hex = "0123456789ABCDEF";
    const std::string name = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
    const auto it = m->vocab_.find(name);
    m->byte_ids_[b] = it == m->vocab_.end() ? -1 : it->second;
  }

  const auto merges = j.find("merges");
  if (merges == j.end() || !merges->is_array()) throw Error(ctx + ": \"merges\" must be an array");
  m->merges_.reserve(merges->size());
  int32_t rank = 0;
  for (const auto& mj : *merges) {
    std::pair<std::string, std::string> pair;
    if (mj.is_string()) {
      const std::string s = mj.get<std::string>();
      if (s.rfind("#version", 0) == 0) continue;  // header line of a merges.txt pasted in
      pair = split_merge(s, size_t(rank), ctx);
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      pair = {mj[0].get<std::string>(), mj[1].get<std::string>()};
    } else {
      throw Error(ctx + ": merge #" + std::to_string(rank) + " " + mj.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto id_of = [&](const std::string& tok) {
      const auto it = m->vocab_.find(tok);
      if (it == m->vocab_.end())
        throw Error(ctx + ": merge #" + std::to_string(rank) + " (\"" + pair.first + "\", \"" + pair.second +
                    "\") uses \"" + tok + "\", which is not in the vocab");
      return it->second;
    };
    const int32_t a = id_of(pair.first), b = id_of(pair.second), merged = id_of(pair.first + pair.second);
    // A repeated pair keeps its last rank, as the Rust library's map does.
    m->merges_[(uint64_t(uint32_t(a)) << 32) | uint32_t(b)] = Merge{rank, merged};
    if (!pair.first.empty() && !pair.second.empty()) {
      size_t last = pair.first.size() - 1, i = 0;
      while (last > 0 && (static_cast<uint8_t>(pair.first[last]) & 0xC0) == 0x80) --last;
      const char32_t lc = unicode::next_cp(pair.first, last), fc = unicode::next_cp(pair.second, i);
      m->joinable_.insert((uint64_t(lc) << 32) | fc);
    }
    ++rank;
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= tokens_.size() || !has_token_[size_t(id)]) return nullptr;
  return &tokens_[size_t(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() <= kCacheMaxWord) {
    merge_cached(word, out);
    return;
  }
  // A long word: cut it where no merge can join the characters on both sides. Both characters must
  // be vocab tokens themselves, so that <unk> fusing and byte fallback stay within one piece.
  size_t begin = 0, i = 0;
  char32_t prev = unicode::next_cp(word, i);
  bool prev_known = is_char_token(word.substr(0, i));
  while (i < word.size()) {
    const size_t start = i;
    const char32_t c = unicode::next_cp(word, i);
    const bool known = is_char_token(word.substr(start, i - start));
    if (prev_known && known && !joinable_.count((uint64_t(prev) << 32) | c)) {
      merge_cached(word.substr(begin, start - begin), out);
      begin = start;
    }
    prev = c, prev_known = known;
  }
  merge_cached(word.substr(begin), out);
}

bool BpeModel::is_char_token(std::string_view ch) const { return vocab_.find(ch) != vocab_.end(); }

void BpeModel::merge_cached(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kCacheMaxWord;
  if (cacheable) {
    std::lock_guard lock(cache_mu_);
    if (const auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + ptrdiff_t(first), out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // 1. One symbol per character; characters outside the vocab become byte tokens or <unk>.
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  int32_t pending_unk = -1;  // an unk symbol not yet emitted, so fuse_unk can extend it
  for (size_t i = 0; i < word.size();) {
    const size_t b = i;
    unicode::next_cp(word, i);
    const std::string_view ch = word.substr(b, i - b);
    if (const auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pending_unk >= 0) ids.push_back(std::exchange(pending_unk, -1));
      ids.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (const char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        // Like the Rust library, a pending <unk> is not emitted first: it follows these bytes.
        for (const char c : ch) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!has_unk_) continue;  // no unk token: the character is dropped
    if (unk_id_ < 0) throw Error("tokenizer: unk_token \"" + unk_token_ + "\" is not in the vocab");
    if (pending_unk >= 0 && !fuse_unk_) ids.push_back(pending_unk);
    pending_unk = unk_id_;
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);

  // 2. Apply merges lowest rank first (leftmost among equal ranks) over a linked list of symbols.
  const int32_t n = int32_t(ids.size());
  if (n > 1 && !merges_.empty()) {
    std::vector<int32_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
    for (int32_t k = 0; k < n; ++k) {
      prev[size_t(k)] = k - 1;
      next[size_t(k)] = k + 1 < n ? k + 1 : -1;
    }
    struct Cand {
      int32_t rank, pos, new_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
    auto lookup = [&](int32_t a, int32_t b) -> const Merge* {
      const auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
      return it == merges_.end() ? nullptr : &it->second;
    };
    for (int32_t k = 0; k + 1 < n; ++k)
      if (const Merge* mg = lookup(ids[size_t(k)], ids[size_t(k + 1)])) heap.push({mg->rank, k, mg->new_id});
    std::vector<uint8_t> dead(size_t(n), 0);
    while (!heap.empty()) {
      const Cand top = heap.top();
      heap.pop();
      const int32_t p = top.pos;
      if (dead[size_t(p)] || next[size_t(p)] < 0) continue;
      const int32_t q = next[size_t(p)];
      const Merge* mg = lookup(ids[size_t(p)], ids[size_t(q)]);
      if (!mg || mg->new_id != top.new_id || mg->rank != top.rank) continue;  // stale entry
      ids[size_t(p)] = top.new_id;
      dead[size_t(q)] = 1;
      next[size_t(p)] = next[size_t(q)];
      if (next[size_t(q)] >= 0) prev[size_t(next[size_t(q)])] = p;
      if (prev[size_t(p)] >= 0)
        if (const Merge* l = lookup(ids[size_t(prev[size_t(p)])], ids[size_t(p)])) heap.push({l->rank, prev[size_t(p)], l->new_id});
      if (next[size_t(p)] >= 0)
        if (const Merge* r = lookup(ids[size_t(p)], ids[size_t(next[size_t(p)])])) heap.push({r->rank, p, r->new_id});
    }
    for (int32_t k = 0; k >= 0 && k < n; k = next[size_t(k)]) out.push_back(ids[size_t(k)]);
    return;
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace retnet::tok
