// The on-disk tier of the prefix-state cache of `retnet serve` (--cache-dir, --cache-disk): state
// blobs (state_blob.hpp), one file per state named by its id, "<id>.rstate", within a byte budget,
// least recently used deleted first. What goes there: the snapshots that carry logits (the end of a
// prompt, the end of a reply) and imported states (PUT /v1/states/{id}), so that a restarted server,
// or another one sharing the directory, resumes those conversations.
//
// Files are written through write_file_atomically (a synced temporary renamed into place) by a
// background thread, so the scheduler never waits on the disk to store; a reader sees a whole file
// or none. Names are content hashes, so servers of the same model that share a directory write the
// same name for the same state and never a wrong one. A file that another server deleted, or one that
// is corrupt, is a miss, never an error. On startup the directory is indexed: every "<id>.rstate"
// is read and checked (structure, checksum, this model's fingerprint, the id); others are skipped
// and logged, and left alone (they may be another model's). Thread-safe.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "prefix_cache.hpp"
#include "state_blob.hpp"

namespace retnet::serve {

class DiskCache {
 public:
  struct Options {
    std::string dir;                              // created when missing
    uint64_t budget_bytes = 0;                    // of this model's files
    uint64_t fingerprint = 0;                     // of the model served: other models' files are not this cache's
    StateBlobLimits limits;                       // what a file may hold (larger files are skipped unread)
    std::function<void(const std::string&)> log;  // one line per skipped file and a summary; may be empty
  };
  // Indexes the directory. Throws Error when it cannot be created or is not a directory.
  explicit DiskCache(Options opt);
  ~DiskCache();  // writes what is still queued, then stops the writer
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  // Queues this state for the writer thread (nothing is encoded here). Dropped when the queue is full
  // (the disk is slower than the states come) or when the file is already there with logits.
  void store_async(std::string id, std::vector<int32_t> tokens, PrefixCache::EntryPtr entry);
  // Writes a blob now (an import), then evicts within the budget; false when it is larger than the
  // whole budget (not written). Throws Error when the write fails.
  bool store(const std::string& id, std::span<const uint8_t> blob, int64_t tokens, bool has_logits);
  // The blob of this id, checked (decode_state_blob, this model, the id): from the index, or the file
  // of that name that another server put in a shared directory. nullopt when none or not valid.
  std::optional<std::vector<uint8_t>> read(const std::string& id);
  // The deepest indexed state that is a prefix of `tokens` and longer than `deeper_than`: shorter
  // than `tokens`, or as long when it carries logits. Read, decoded and its tokens compared. nullopt
  // when none (a file that went away or does not check is dropped from the index).
  std::optional<StateBlob> lookup(std::span<const int32_t> tokens, int64_t deeper_than);
  bool erase(const std::string& id);  // deletes the file; whether there was one
  void flush();                       // waits until the queue is written (tests)

  uint64_t bytes() const;
  size_t files() const;
  uint64_t skipped_at_start() const { return skipped_; }
  std::string path_of(const std::string& id) const { return opt_.dir + "/" + id + ".rstate"; }

 private:
  struct Meta {
    int64_t tokens = 0;
    uint64_t bytes = 0;
    bool logits = false;
    uint64_t used = 0;  // LRU clock: larger is more recent
  };
  struct Pending {
    std::string id;
    std::vector<int32_t> tokens;
    PrefixCache::EntryPtr entry;
  };
  void scan();
  void writer();
  bool write(const std::string& id, std::span<const uint8_t> blob, int64_t tokens, bool has_logits);
  void evict_locked();
  std::optional<StateBlob> check(const std::string& id, const std::vector<uint8_t>& bytes) const;
  std::optional<std::vector<uint8_t>> slurp(const std::string& path) const;
  void log(const std::string& s) const {
    if (opt_.log) opt_.log(s);
  }

  Options opt_;
  uint64_t max_file_bytes_ = 0;
  uint64_t skipped_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::unordered_map<std::string, Meta> index_;
  uint64_t used_bytes_ = 0, clock_ = 0;
  std::deque<Pending> queue_;
  bool writing_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace retnet::serve
