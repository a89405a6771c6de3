// Prefix-state cache of `retnet serve`: state snapshots keyed by the tokens they absorbed, in a token
// trie, within a byte budget, least recently used evicted first.
//
// A RetNet state has a constant size whatever the context length, so one snapshot stands for a whole
// prefix (a KV cache would grow with it). Snapshots are taken where resuming them is exact (prefill
// block boundaries), at the end of a prompt and at the end of a reply (with the logits of their last
// token, so that an identical prompt needs no prefill at all). Every entry also has a state id
// (state_blob.hpp) under which GET/PUT/DELETE /v1/states/{id} find it. Thread-safe: the scheduler
// thread stores and looks up, HTTP threads export and import; entries are immutable and shared, so an
// entry looked up stays valid after an eviction.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace retnet::serve {

class PrefixCache {
 public:
  struct Entry {
    std::vector<uint8_t> state;  // Session::save_state bytes
    std::vector<float> logits;   // [vocab] of the last absorbed token, or empty
    int64_t tokens = 0;          // prefix length this snapshot holds
    std::string id;              // state_id(fingerprint, prefix)
  };
  using EntryPtr = std::shared_ptr<const Entry>;

  // fingerprint: the model's (ModelInfo::fingerprint), part of every state id.
  explicit PrefixCache(uint64_t budget_bytes, uint64_t fingerprint = 0)
      : budget_(budget_bytes), fingerprint_(fingerprint) {}
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;
  ~PrefixCache();

  bool enabled() const { return budget_ > 0; }
  // Stores a snapshot of `prefix` (replacing one already there), then evicts least recently used
  // entries until the budget holds; an entry larger than the whole budget is not stored. Returns
  // the entry (the one kept when a snapshot with logits already held this prefix), null when not stored.
  EntryPtr put(std::span<const int32_t> prefix, std::vector<uint8_t> state, std::vector<float> logits);
  // The deepest snapshot whose tokens are a prefix of `tokens`: shorter than it, or as long when it
  // carries logits (a snapshot alone cannot be sampled from). Marks it used. Null when none.
  EntryPtr lookup(std::span<const int32_t> tokens);
  // The entry with this state id and the tokens it holds (for an export), or nullopt. Marks it used.
  struct Found {
    EntryPtr entry;
    std::vector<int32_t> tokens;
  };
  std::optional<Found> find(const std::string& id);
  bool erase(const std::string& id);  // whether there was one

  uint64_t bytes() const;
  size_t entries() const;
  uint64_t hits() const;
  uint64_t hit_tokens() const;

 private:
  struct Node;
  using Lru = std::list<Node*>;
  struct Node {
    Node* parent = nullptr;
    int32_t token = 0;
    std::map<int32_t, std::unique_ptr<Node>> children;
    std::shared_ptr<const Entry> entry;
    Lru::iterator lru_pos;  // valid while entry is set
  };
  static constexpr uint64_t kNodeBytes = 96;  // a trie node's own overhead, counted in the budget

  uint64_t entry_bytes(const Entry& e) const;
  void evict_one();
  void prune(Node* n);
  void drop(Node* n);  // removes n's entry

  mutable std::mutex mu_;
  uint64_t budget_;
  uint64_t fingerprint_;
  std::unordered_map<std::string, Node*> by_id_;
  uint64_t used_ = 0;
  uint64_t hits_ = 0, hit_tokens_ = 0;
  Node root_;
  Lru lru_;  // most recently used first
};

}  // namespace retnet::serve
