// retnet — public C++ API. Only standard types appear here.
//
// Ownership and threads:
//  * Model is immutable after load() and may be shared by any number of threads and Sessions
//    (hold it through the shared_ptr that load() returns).
//  * Session holds one sequence's recurrent state; use one Session per thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "retnet/error.hpp"
#include "retnet/log.hpp"
#include "retnet/sampler.hpp"
#include "retnet/tokenizer.hpp"

namespace retnet {

enum class Device { Auto, Cpu, Cuda };

// How positions are turned into rotation angles.
enum class Angles {
  Reference,  // float32(n)·θ in fp32, as torchscale/syncdoth/fla compute them (default; matches them)
  Exact,      // n·θ in float64: closer to the exact rotation at very long positions
};

// Retention formulation for multi-token calls (decode is always recurrent).
enum class Mode { Parallel, Recurrent, Chunkwise };

struct LoadOptions {
  Device device = Device::Auto;
  int threads = 0;  // 0 = all hardware threads
  Angles angles = Angles::Reference;
  // Storage of the weight matrices: "" keeps the checkpoint's dtypes; "f32", "f16" or "bf16"
  // converts every matrix at load (norm vectors are always fp32).
  std::string dtype;
  // Called while the weights are paged in / uploaded, with bytes done and total; return false to
  // cancel (load() then throws Error). Called on the loading thread.
  std::function<bool(uint64_t done, uint64_t total)> on_progress;
};

struct ModelInfo {
  std::string family;  // "torchscale", "syncdoth" or "fla"
  int64_t vocab_size = 0, hidden_size = 0, layers = 0, heads = 0;
  int64_t key_head_dim = 0, value_head_dim = 0, ffn_dim = 0;
  int64_t default_chunk_size = 0;
  uint64_t n_params = 0;      // parameters read from the checkpoint
  uint64_t weight_bytes = 0;  // bytes of weights as stored
  // Weight bytes one decode step reads: every matrix but the embedding table (of which one row is
  // gathered), unless the head is tied to it. Roofline: (this + 2·state_bytes) per token.
  uint64_t decode_weight_bytes = 0;
  uint64_t state_bytes = 0;   // bytes of one Session's recurrent state (fp32)
  std::string weight_dtype;   // dtype of the projection matrices: "F32", "F16", "BF16" or "mixed"
  std::string device;         // backend that runs it
  int threads = 1;
  std::vector<int64_t> eos_token_ids;  // config.json and generation_config.json, merged
  int64_t bos_token_id = -1;
  double load_ms = 0;  // wall time of Model::load
  uint64_t fingerprint = 0;  // architecture + weight sample hash; state snapshots carry it
};

// A model with random weights of a given shape, built in memory (no checkpoint): for benchmarks
// and tests at realistic sizes. dk = hidden/heads, dv = value_dim/heads.
struct RandomModelSpec {
  std::string family = "torchscale";  // "torchscale" (syncdoth conventions) or "fla"
  int64_t vocab_size = 32000;
  int64_t hidden_size = 768;
  int64_t layers = 12;
  int64_t heads = 3;
  int64_t value_dim = 0;  // 0: 2 × hidden_size (dv = 512 at dk = 256, as the paper's shapes)
  int64_t ffn_dim = 0;    // 0: 2 × hidden_size
  std::string dtype = "bf16";  // "f32", "f16" or "bf16": storage of the matrices
  uint64_t seed = 1;
};

class Model {
 public:
  // Builds a random-weight model in memory (see RandomModelSpec). Throws Error on a bad shape.
  static std::shared_ptr<const Model> random(const RandomModelSpec& spec, const LoadOptions& options = {});

  // Loads a Hugging Face-style model directory (config.json + model.safetensors or sharded).
  // Throws Error naming the file, key or tensor on any problem.
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& options = {});
  ~Model();
  const ModelInfo& info() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct PrefillOptions {
  Mode mode = Mode::Chunkwise;
  int64_t chunk_size = 0;   // 0 = the model's default (config recurrent_chunk_size / 64 for fla)
  bool all_logits = false;  // return logits for every token, not only the last
};

struct GenerateOptions {
  int64_t max_tokens = 128;  // < 0: until an end-of-sequence token
  SamplerParams sampler;     // temperature 0 = greedy
  bool ignore_eos = false;
  // Tokens that end generation (not emitted). Empty: the model's eos_token_id (config.json and
  // generation_config.json), else the tokenizer's EOS.
  std::vector<int32_t> stop_tokens;
  bool add_special = true;  // BOS/EOS around the prompt as the tokenizer config asks
  PrefillOptions prefill;   // how the prompt is absorbed (chunkwise by default)
};

// One generated token: its id and the text it completes. text holds only whole UTF-8 characters
// (it is empty while a multi-byte character is still incomplete); the concatenation of all texts
// is exactly the tokenizer's decode of all generated ids. A final event with id -1 carries bytes
// held back at the end (an incomplete character, as U+FFFD), if any.
struct TokenEvent {
  int32_t id;
  std::string_view text;
};

struct GenerateResult {
  std::string text;  // everything generated
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prompt_ms = 0, eval_ms = 0;
  enum class Stop { Length, EndOfSequence, Callback } stop = Stop::Length;
};

struct SessionStats {
  int64_t prompt_tokens = 0;  // absorbed by prefill()
  int64_t eval_tokens = 0;    // absorbed by decode()/decode_batch()
  double prompt_ms = 0, eval_ms = 0;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Absorbs tokens into the state and returns logits: [vocab] for the last token, or
  // [tokens.size() * vocab] with all_logits. The view stays valid until the next call.
  std::span<const float> prefill(std::span<const int32_t> tokens, const PrefillOptions& options = {});
  // One recurrent step; returns [vocab] logits of this token.
  std::span<const float> decode(int32_t token);

  // Advances each session by one token in a single step that reads the weights once (batch
  // decoding); results equal decoding each alone. All sessions must share one Model and be
  // distinct. Afterwards each session's logits() holds its [vocab] row.
  static void decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens);
  // Logits of the last prefill/decode call of this session (same view those calls returned).
  std::span<const float> logits() const;

  // Encodes the prompt, prefills it and samples up to max_tokens, calling on_token for each
  // (return false from it to stop). Continues from the current state, so a chat can call it
  // repeatedly on one session.
  GenerateResult generate(const Tokenizer& tokenizer, std::string_view prompt, const GenerateOptions& options = {},
                          const std::function<bool(const TokenEvent&)>& on_token = {});
  SessionStats stats() const;  // cumulative since construction or reset()

  int64_t position() const;  // tokens absorbed so far (the absolute position of the next token)
  void reset();              // back to the empty state at position 0

  // State snapshots. A RetNet state has a constant size whatever the context length, so a long
  // prompt can be prefilled once, saved, and resumed in another process. The snapshot carries a
  // format version, the model's fingerprint, the position and a checksum; loading a snapshot of
  // another model, or a truncated or corrupted one, throws Error and leaves this session unchanged.
  std::vector<uint8_t> save_state() const;
  void load_state(std::span<const uint8_t> bytes);
  // File forms. Saving writes a temporary file beside the target and renames it into place, so a
  // failure never leaves a partial snapshot under the target name.
  void save_state_file(const std::string& path) const;
  void load_state_file(const std::string& path);
  Session clone() const;     // an independent copy of the state
  const Model& model() const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace retnet
