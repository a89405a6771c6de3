// `retnet perplexity --kl-save / --kl-base`: the base model's log-probabilities at every scored position,
// saved once to a file, and the statistics of another model (e.g. a quantized one) against them.
//
// File format (version 1, little-endian, as every platform the engine builds for):
//   offset  size  field
//        0     8  magic "RNKLBASE"
//        8     4  u32 format version (1)
//       12     4  u32 header size in bytes (96)
//       16     8  i64 vocabulary size V
//       24     8  i64 --ctx (0: the whole text in one pass)
//       32     8  i64 chunk size of the base run (informational: a different one is a valid comparison)
//       40     8  i64 token count of the text
//       48     8  u64 digest of the token ids (kl_digest over their int32 values)
//       56     8  i64 scored positions N
//       64     8  f64 the base's total negative log-likelihood (natural log)
//       72     8  f64 the base's perplexity
//       80     4  u32 value type (0: fp32 log-probabilities)
//       84     4  u32 reserved (0)
//       88     8  u64 checksum: kl_digest of bytes [0, 88) followed by the payload
//       96  N·V·4 payload: per scored position, the V natural-log probabilities log softmax(logits), fp32
// fp32, not fp16: the KL of a q8_0 model is of the order of 1e-4 to 1e-3 nats, while fp16 rounds a
// log-probability near -8 by up to 4e-3, which would bias the mean by as much as the value measured;
// fp32 rounds it by 5e-7, and a model compared against its own file gives exactly 0. The price is
// 4·V bytes per position (the bundled model's validation text: 14 233 positions × 4096 = 222 MiB).
// Measured: --bf16-activations against the f32 base there has a KL of 2.5e-6, which fp16 could not resolve.
#pragma once
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace retnet::cli {

inline constexpr uint32_t kKlFormatVersion = 1;
inline constexpr size_t kKlHeaderBytes = 96;

// A 64-bit digest of a stream of 32-bit words (not cryptographic: it catches a changed text or a
// damaged file, not an adversary).
class KlDigest {
 public:
  void add(std::span<const uint32_t> words);
  void add_bytes(std::span<const uint8_t> bytes);  // size a multiple of 4
  uint64_t value() const;

 private:
  uint64_t h_ = 0x6a09e667f3bcc909ull, n_ = 0;
};

uint64_t kl_digest_ids(std::span<const int32_t> ids);

struct KlHeader {
  int64_t vocab = 0, ctx = 0, chunk = 0, n_tokens = 0, n_positions = 0;
  uint64_t ids_digest = 0, checksum = 0;
  double base_nll = 0, base_ppl = 0;
};

// log softmax of one row of logits [V] into out [V] (fp32; the sums in double).
void log_softmax(std::span<const float> logits, std::span<float> out);

// Collects the base log-probabilities of a --kl-save run, then writes the file atomically.
class KlSaver {
 public:
  // Throws Error when n_positions · V floats do not fit in memory.
  KlSaver(std::string path, int64_t vocab, int64_t n_positions);
  void add(std::span<const float> logits);  // [V], one scored position
  // Writes header + payload (fills in the checksum) through write_file_atomically.
  void write(KlHeader h) const;

 private:
  std::string path_;
  int64_t vocab_, n_positions_, added_ = 0;
  std::vector<float> logp_;  // [n_positions, V]
};

// Statistics of a model against a base file: mean KL(base ‖ model), percentiles, top-1 agreement.
struct KlStats {
  std::vector<double> kl;  // per position
  int64_t top1_agree = 0;
  double mean = 0, stderr_mean = 0, median = 0, p90 = 0, p99 = 0, max = 0;
  void finish();  // fills the summary fields from kl
};

// Reads a --kl-base file: open() checks the magic, version, size and checksum (one pass over the
// file), check_run() that it was made from the same text and settings, next() streams the rows.
class KlBaseReader {
 public:
  explicit KlBaseReader(std::string path);
  const KlHeader& header() const { return h_; }
  void check_run(int64_t vocab, int64_t ctx, std::span<const int32_t> ids, int64_t n_positions) const;
  // Compares the next position's base row with the model's logits [V]; adds to stats.
  void compare(std::span<const float> logits, KlStats& stats);

 private:
  std::string path_;
  KlHeader h_;
  std::ifstream in_;
  std::vector<float> base_, model_;
  int64_t read_ = 0;
};

// Scored positions of a text of n_tokens ids: one pass (ctx 0) or windows of ctx tokens.
int64_t kl_scored_positions(int64_t n_tokens, int64_t ctx);

}  // namespace retnet::cli
