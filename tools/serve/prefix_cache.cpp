// Token trie of state snapshots with an LRU byte budget (prefix_cache.hpp).
#include "prefix_cache.hpp"

#include "state_blob.hpp"

namespace retnet::serve {

PrefixCache::~PrefixCache() {
  // Tear the trie down iteratively: a long prompt is a chain of one node per token, too deep for the
  // recursive destruction of unique_ptr children.
  std::vector<std::unique_ptr<Node>> pending;
  for (auto& [t, c] : root_.children) pending.push_back(std::move(c));
  root_.children.clear();
  while (!pending.empty()) {
    std::unique_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    for (auto& [t, c] : n->children) pending.push_back(std::move(c));
    n->children.clear();
  }
}

uint64_t PrefixCache::entry_bytes(const Entry& e) const {
  return uint64_t(e.state.size()) + uint64_t(e.logits.size()) * sizeof(float) + sizeof(Entry) + e.id.size();
}

uint64_t PrefixCache::bytes() const {
  std::lock_guard lk(mu_);
  return used_;
}
size_t PrefixCache::entries() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}
uint64_t PrefixCache::hits() const {
  std::lock_guard lk(mu_);
  return hits_;
}
uint64_t PrefixCache::hit_tokens() const {
  std::lock_guard lk(mu_);
  return hit_tokens_;
}

PrefixCache::EntryPtr PrefixCache::put(std::span<const int32_t> prefix, std::vector<uint8_t> state,
                                       std::vector<float> logits) {
  if (!enabled()) return nullptr;
  auto e = std::make_shared<Entry>();
  e->state = std::move(state);
  e->logits = std::move(logits);
  e->tokens = int64_t(prefix.size());
  e->id = state_id(fingerprint_, prefix);                              // outside the lock: one pass over the prefix
  const uint64_t need = entry_bytes(*e) + kNodeBytes * prefix.size();  // at most this many new nodes
  if (need > budget_) return nullptr;
  std::lock_guard lk(mu_);
  Node* n = &root_;
  for (int32_t t : prefix) {
    auto& c = n->children[t];
    if (!c) {
      c = std::make_unique<Node>();
      c->parent = n;
      c->token = t;
      used_ += kNodeBytes;
    }
    n = c.get();
  }
  if (n->entry) {
    // Same prefix again: a snapshot with logits is worth more than one without.
    if (!n->entry->logits.empty() && e->logits.empty()) {
      lru_.splice(lru_.begin(), lru_, n->lru_pos);
      return n->entry;
    }
    used_ -= entry_bytes(*n->entry);
    lru_.erase(n->lru_pos);
  }
  used_ += entry_bytes(*e);
  n->entry = e;
  by_id_[e->id] = n;
  lru_.push_front(n);
  n->lru_pos = lru_.begin();
  while (used_ > budget_ && !lru_.empty()) evict_one();
  return n->entry ? n->entry : nullptr;  // null when this entry was the one evicted
}

PrefixCache::EntryPtr PrefixCache::lookup(std::span<const int32_t> tokens) {
  std::lock_guard lk(mu_);
  Node* best = nullptr;
  Node* n = &root_;
  for (size_t i = 0;; ++i) {
    if (n->entry && (i < tokens.size() || !n->entry->logits.empty())) best = n;
    if (i == tokens.size()) break;
    auto it = n->children.find(tokens[i]);
    if (it == n->children.end()) break;
    n = it->second.get();
  }
  if (!best || best == &root_) return nullptr;
  lru_.splice(lru_.begin(), lru_, best->lru_pos);
  ++hits_;
  hit_tokens_ += uint64_t(best->entry->tokens);
  return best->entry;
}

std::optional<PrefixCache::Found> PrefixCache::find(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  Node* n = it->second;
  lru_.splice(lru_.begin(), lru_, n->lru_pos);
  Found f;
  f.entry = n->entry;
  f.tokens.resize(size_t(n->entry->tokens));
  for (size_t i = f.tokens.size(); n != &root_; n = n->parent) f.tokens[--i] = n->token;
  return f;
}

bool PrefixCache::erase(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  Node* n = it->second;
  lru_.erase(n->lru_pos);
  drop(n);
  return true;
}

void PrefixCache::evict_one() {
  Node* n = lru_.back();
  lru_.pop_back();
  drop(n);
}

void PrefixCache::drop(Node* n) {
  used_ -= entry_bytes(*n->entry);
  by_id_.erase(n->entry->id);
  n->entry.reset();
  prune(n);
}

// Removes nodes that no longer lead to any snapshot, walking up from n.
void PrefixCache::prune(Node* n) {
  while (n != &root_ && !n->entry && n->children.empty()) {
    Node* p = n->parent;
    p->children.erase(n->token);  // destroys n
    used_ -= kNodeBytes;
    n = p;
  }
}

}  // namespace retnet::serve
