// The state container of `retnet serve`: one conversation's resumable state as one blob, the body of
// GET/PUT /v1/states/{id} and the file format of --cache-dir (the same bytes in both places).
//
//   offset  size        field
//   0       8           magic "RETNETSV"
//   8       4           container version (2; version 1, still read, summed every byte)
//   12      4           reserved, 0
//   16      8           model fingerprint (ModelInfo::fingerprint)
//   24      8           n_tokens: tokens the state absorbed (>= 1)
//   32      8           n_logits: 0, or the vocabulary size when the logits of the last token follow
//   40      8           state_bytes: length of the library snapshot that follows
//   48      4·n_tokens  token ids (i32)
//   ...     4·n_logits  logits of the last token (f32)
//   ...     state_bytes Session::save_state bytes (the library's own versioned, checksummed snapshot,
//                       which also carries the fingerprint, the position and a digest of the tokens)
//   end-8   8           FNV-1a 64 of the bytes before the snapshot, continued over the snapshot's last 8
//                       bytes (its own checksum, which covers the rest of it): the state itself is
//                       summed once, by the library's fast checksum, not a second time byte by byte
//                       (FNV-1a over a 125m state took 25 ms)
// All little-endian. The snapshot holds a digest of the tokens, not the tokens; the container adds
// them so that a replica can index the state by prefix without the conversation's text.
//
// A state's id is a content hash of (model fingerprint, token ids): the same conversation on the same
// model has the same id on every replica, and any replica can check that a blob is what its id says.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace retnet::serve {

struct StateBlob {
  uint64_t fingerprint = 0;
  std::vector<int32_t> tokens;  // [n_tokens]
  std::vector<float> logits;    // [vocab] of the last token, or empty
  std::vector<uint8_t> state;   // Session::save_state bytes
};

// Bounds a decoded blob must keep (a forged header never makes the decoder allocate past them).
struct StateBlobLimits {
  int64_t max_tokens = int64_t(1) << 24;
  int64_t vocab_size = 0;  // > 0: logits, when present, must have exactly this many entries and
                           // token ids must be below it
};

constexpr size_t kStateBlobHeader = 48;

std::vector<uint8_t> encode_state_blob(uint64_t fingerprint, std::span<const int32_t> tokens,
                                       std::span<const float> logits, std::span<const uint8_t> state);
// Checks the structure (magic, version, sizes against the bytes present, the checksum, finite logits,
// token ids, and that the inner snapshot names the same model and position) and returns the parts.
// Throws Error "state blob: <what is wrong>"; it does not check the fingerprint against any model
// (the caller does) nor the snapshot's own checksum (Session::load_state does, and every state taken
// from a blob goes through it).
StateBlob decode_state_blob(std::span<const uint8_t> bytes, const StateBlobLimits& limits);
// The size a blob with these parts has (what a server allows a PUT body to be).
uint64_t state_blob_bytes(int64_t n_tokens, int64_t n_logits, uint64_t state_bytes);

// Incremental FNV-1a 128 over (fingerprint, tokens): id() after each add() is the id of that prefix,
// so the ids of every prefix of a prompt cost one pass.
class StateHasher {
 public:
  explicit StateHasher(uint64_t fingerprint);
  void add(int32_t token);
  std::string id() const;  // 32 lowercase hex digits

 private:
  void bytes(const void* p, size_t n);
  uint64_t hi_, lo_;
};
std::string state_id(uint64_t fingerprint, std::span<const int32_t> tokens);
bool is_state_id(std::string_view s);  // 32 lowercase hex digits

}  // namespace retnet::serve
