// The on-disk tier of the prefix-state cache (disk_cache.hpp).
#include "disk_cache.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "retnet/atomic_write.hpp"
#include "retnet/error.hpp"

namespace retnet::serve {

namespace fs = std::filesystem;

namespace {
constexpr const char* kSuffix = ".rstate";
// Writes waiting for the writer thread; beyond, new states are not written (the RAM tier has them).
constexpr size_t kMaxPending = 32;
}  // namespace

DiskCache::DiskCache(Options opt) : opt_(std::move(opt)) {
  std::error_code ec;
  if (opt_.dir.empty()) throw Error("--cache-dir: the path is empty");
  fs::create_directories(opt_.dir, ec);
  if (!fs::is_directory(opt_.dir, ec))
    throw Error("--cache-dir: " + opt_.dir + ": not a directory" + (ec ? " (" + ec.message() + ")" : ""));
  // A file of this model is never larger than a blob of the longest state with logits; the snapshot
  // itself is bounded by the model's shape, so 1 GiB of it covers any model this engine loads.
  max_file_bytes_ = state_blob_bytes(opt_.limits.max_tokens, opt_.limits.vocab_size, uint64_t(1) << 30);
  scan();
  thread_ = std::thread([this] { writer(); });
}

DiskCache::~DiskCache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::vector<uint8_t>> DiskCache::slurp(const std::string& path) const {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > max_file_bytes_) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<uint8_t> b(size);
  in.read(reinterpret_cast<char*>(b.data()), std::streamsize(size));
  if (size_t(in.gcount()) != size || in.peek() != std::ifstream::traits_type::eof()) return std::nullopt;
  return b;
}

std::optional<StateBlob> DiskCache::check(const std::string& id, const std::vector<uint8_t>& bytes) const {
  try {
    StateBlob s = decode_state_blob(bytes, opt_.limits);
    if (s.fingerprint != opt_.fingerprint || state_id(s.fingerprint, s.tokens) != id) return std::nullopt;
    return s;
  } catch (const Error&) {
    return std::nullopt;
  }
}

void DiskCache::scan() {
  struct Found {
    std::string id;
    fs::file_time_type mtime;
    Meta meta;
  };
  std::vector<Found> found;
  uint64_t foreign = 0;
  std::error_code ec;
  for (fs::directory_iterator it(opt_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    if (p.extension() != kSuffix) continue;  // not a state: write_file_atomically's temporaries, other files
    const std::string id = p.stem().string();
    std::error_code fe;
    if (!is_state_id(id) || !it->is_regular_file(fe)) {
      log("cache-dir: skipped " + name + ": not a state file name");
      ++skipped_;
      continue;
    }
    const auto bytes = slurp(p.string());
    if (!bytes) {
      log("cache-dir: skipped " + name + ": unreadable or too large");
      ++skipped_;
      continue;
    }
    StateBlob s;
    try {
      s = decode_state_blob(*bytes, opt_.limits);
    } catch (const Error& e) {
      log("cache-dir: skipped " + name + ": " + e.what());
      ++skipped_;
      continue;
    }
    if (s.fingerprint != opt_.fingerprint) {
      ++foreign;  // another model's: a directory may be shared by several servers
      continue;
    }
    if (state_id(s.fingerprint, s.tokens) != id) {
      log("cache-dir: skipped " + name + ": its content has another id");
      ++skipped_;
      continue;
    }
    found.push_back(
        {id, fs::last_write_time(p, fe), Meta{int64_t(s.tokens.size()), bytes->size(), !s.logits.empty(), 0}});
  }
  if (ec) log("cache-dir: listing " + opt_.dir + " stopped: " + ec.message());
  // The LRU order continues from the files' modification times (a hit touches its file).
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  std::lock_guard lk(mu_);
  for (auto& f : found) {
    f.meta.used = ++clock_;
    used_bytes_ += f.meta.bytes;
    index_[f.id] = f.meta;
  }
  evict_locked();
  log("cache-dir: " + opt_.dir + ": " + std::to_string(index_.size()) + " states of this model (" +
      std::to_string(used_bytes_ >> 20) + " MiB), " + std::to_string(foreign) + " of other models, " +
      std::to_string(skipped_) + " skipped");
}

void DiskCache::evict_locked() {
  while (used_bytes_ > opt_.budget_bytes && !index_.empty()) {
    auto oldest = index_.begin();
    for (auto it = index_.begin(); it != index_.end(); ++it)
      if (it->second.used < oldest->second.used) oldest = it;
    std::error_code ec;
    fs::remove(path_of(oldest->first), ec);  // already gone (another server evicted it): the same
    used_bytes_ -= oldest->second.bytes;
    index_.erase(oldest);
  }
}

void DiskCache::store_async(std::string id, std::vector<int32_t> tokens, PrefixCache::EntryPtr entry) {
  {
    std::lock_guard lk(mu_);
    if (stop_ || queue_.size() >= kMaxPending) return;
    auto it = index_.find(id);
    if (it != index_.end() && (it->second.logits || entry->logits.empty())) {
      it->second.used = ++clock_;
      return;
    }
    queue_.push_back(Pending{std::move(id), std::move(tokens), std::move(entry)});
  }
  cv_.notify_all();
}

void DiskCache::writer() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stop_, and everything written
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lk.unlock();
    try {
      const std::vector<uint8_t> blob = encode_state_blob(opt_.fingerprint, p.tokens, p.entry->logits, p.entry->state);
      write(p.id, blob, int64_t(p.tokens.size()), !p.entry->logits.empty());
    } catch (const std::exception& e) {
      log(std::string("cache-dir: ") + e.what());  // a full disk costs the disk tier, nothing else
    }
    lk.lock();
    writing_ = false;
    idle_cv_.notify_all();
  }
}

void DiskCache::flush() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [&] { return queue_.empty() && !writing_; });
}

bool DiskCache::store(const std::string& id, std::span<const uint8_t> blob, int64_t tokens, bool has_logits) {
  return write(id, blob, tokens, has_logits);
}

bool DiskCache::write(const std::string& id, std::span<const uint8_t> blob, int64_t tokens, bool has_logits) {
  if (blob.size() > opt_.budget_bytes) return false;
  write_file_atomically(path_of(id), blob, "state");
  std::lock_guard lk(mu_);
  auto [it, fresh] = index_.try_emplace(id);
  if (!fresh) used_bytes_ -= it->second.bytes;
  it->second = Meta{tokens, blob.size(), has_logits, ++clock_};
  used_bytes_ += blob.size();
  evict_locked();
  return true;
}

std::optional<std::vector<uint8_t>> DiskCache::read(const std::string& id) {
  if (!is_state_id(id)) return std::nullopt;
  auto bytes = slurp(path_of(id));
  if (!bytes || !check(id, *bytes)) return std::nullopt;
  std::lock_guard lk(mu_);
  if (auto it = index_.find(id); it != index_.end()) it->second.used = ++clock_;
  return bytes;
}

std::optional<StateBlob> DiskCache::lookup(std::span<const int32_t> tokens, int64_t deeper_than) {
  {
    std::lock_guard lk(mu_);
    if (index_.empty()) return std::nullopt;
  }
  // The id of every prefix longer than deeper_than, in one pass; the deepest indexed one wins.
  std::vector<std::string> ids;
  StateHasher h(opt_.fingerprint);
  for (size_t k = 0; k < tokens.size(); ++k) {
    h.add(tokens[k]);
    if (int64_t(k + 1) > deeper_than) ids.push_back(h.id());
  }
  for (;;) {
    std::string best;
    int64_t best_len = 0;
    {
      std::lock_guard lk(mu_);
      for (size_t i = ids.size(); i-- > 0;) {
        const int64_t len = deeper_than + 1 + int64_t(i);
        auto it = index_.find(ids[i]);
        if (it == index_.end() || it->second.tokens != len) continue;
        if (len == int64_t(tokens.size()) && !it->second.logits) continue;
        best = ids[i];
        best_len = len;
        it->second.used = ++clock_;
        break;
      }
    }
    if (best.empty()) return std::nullopt;
    std::optional<StateBlob> s;
    if (auto bytes = slurp(path_of(best))) s = check(best, *bytes);
    if (s && int64_t(s->tokens.size()) == best_len && std::equal(s->tokens.begin(), s->tokens.end(), tokens.begin())) {
      std::error_code ec;
      fs::last_write_time(path_of(best), fs::file_time_type::clock::now(), ec);  // the LRU order across restarts
      return s;
    }
    // Gone (another server sharing the directory evicted it), corrupt, or a hash collision: dropped
    // from the index, and the next deepest tried.
    std::lock_guard lk(mu_);
    if (auto it = index_.find(best); it != index_.end()) {
      used_bytes_ -= it->second.bytes;
      index_.erase(it);
    }
  }
}

bool DiskCache::erase(const std::string& id) {
  if (!is_state_id(id)) return false;
  {
    std::lock_guard lk(mu_);
    std::erase_if(queue_, [&](const Pending& p) { return p.id == id; });
    if (auto it = index_.find(id); it != index_.end()) {
      used_bytes_ -= it->second.bytes;
      index_.erase(it);
    }
  }
  std::error_code ec;
  return fs::remove(path_of(id), ec);
}

uint64_t DiskCache::bytes() const {
  std::lock_guard lk(mu_);
  return used_bytes_;
}

size_t DiskCache::files() const {
  std::lock_guard lk(mu_);
  return index_.size();
}

}  // namespace retnet::serve
