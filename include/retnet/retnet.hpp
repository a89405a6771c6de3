// retnet — public C++ API. Only standard types appear here. docs/library.md gives the tour.
//
// Ownership and threads (each function below repeats what applies to it):
//  * Model is immutable after load() and may be shared by any number of threads and Sessions; it
//    is held through the shared_ptr that load() returns, and every Session keeps its Model alive.
//  * Session holds one sequence's recurrent state and is not thread-safe: one thread at a time per
//    Session (use one Session per thread). Sessions of one Model may run on different threads at
//    the same time; on the CPU their forward passes then take turns on the model's thread pool
//    (which already uses all its threads for one pass), so for throughput decode them together
//    with decode_batch() instead.
//  * Views (std::span, std::string_view) returned or passed to callbacks point into memory the
//    library owns and say how long they stay valid; everything returned by value is the caller's.
//  * Failures throw retnet::Error (error.hpp) with a one-line message naming the file, key, tensor
//    or argument; a call that throws for a bad argument leaves the Session unchanged.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "retnet/error.hpp"
#include "retnet/export.h"
#include "retnet/log.hpp"
#include "retnet/quantize.hpp"
#include "retnet/sampler.hpp"
#include "retnet/tokenizer.hpp"

namespace retnet {

// Where a model runs. Auto: CUDA when this build has it and a device is present, else the CPU
// (ModelInfo::device names the choice). Cuda without a device: load() throws Error.
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
  // converts every matrix at load (norm vectors are always fp32; quantized matrices stay quantized).
  std::string dtype;
  // "q8_0", "q4_0" or "q4_k": quantizes the projection matrices (q, k, v, g, o, FFN) at load, for a
  // one-off run, exactly as quantize_model() with its default options would (the same bytes, so
  // the same logits as loading its output): the embedding keeps its precision, the head is q8_0.
  // "" (default): none. Quantized weights run on either device (CUDA: fp32 activations, see
  // docs/library.md).
  std::string quantize;
  // Called while the weights are paged in / uploaded, with bytes done and total; return false to
  // cancel (load() then throws Error). Called on the loading thread.
  std::function<bool(uint64_t done, uint64_t total)> on_progress;
  // Scan every weight the model uses (F32, F16, BF16) for NaN and ±Inf before building the model;
  // load() then throws Error naming the file, the tensor and the first bad element. Reads the whole
  // checkpoint once more (off by default: about as long as the load itself).
  bool check_weights = false;
  // Prefill products against BF16 weight matrices round the activations to bf16 (nearest even) and
  // multiply in bf16 with fp32 sums, as PyTorch bf16 and llama.cpp do: about 2x faster prefill on CPUs
  // with AVX512-BF16 (vdpbf16ps), at the cost of exactness: logits differ from the default (fp32
  // activation) path by about 2e-3 of their scale (max |Δ| / max |logit| over 128 tokens of the
  // bundled model, whose perplexity moves from 32.59132 to 32.59117; up to 1.4e-2 on the tiny random
  // test fixtures). Only products of more than 8 rows (prefill blocks); decode and batched
  // decode are unchanged. Ignored, with an info log, when the CPU lacks AVX512-BF16, on CUDA, or when
  // no matrix is BF16 (ModelInfo::bf16_activations says whether it applies). Off by default.
  bool bf16_activations = false;
  // Storage of every session's recurrent state between steps: "" or "f32" (default: exact, as the
  // references keep it) or "f16" (half the state memory, e.g. 48 instead of 96 MiB per session at
  // the 1.3b shape, and half the state bytes a decode step reads and writes; as llama.cpp keeps its
  // KV cache in f16 by default; on the 2-core dev VM decode speed barely moved, the 4-bit GEMVs
  // being compute-bound there). With f16 each step and each prefill block still
  // computes in fp32 and rounds the state to f16 (nearest even) when it stores it; a state value
  // beyond f16's range (±65504) becomes infinite, and the logits then non-finite (the sampler
  // refuses them): no silent wrong answer. Snapshots stay fp32 (save widens exactly; loading a
  // snapshot whose values do not fit f16 throws Error). CPU only: Error on the CUDA backend (with
  // Device::Auto, ask for Device::Cpu). docs/library.md has the accuracy measured.
  std::string state_dtype;
};

// Sampling defaults of a model directory's generation_config.json (Hugging Face's file), as
// Model::load read them: a field is set only when the file gives that key with its JSON type (a key
// of another type, or null, counts as absent). Nothing applies them by itself: GenerateOptions
// keeps the library's defaults (SamplerParams) until the caller applies these, e.g. with apply_to.
struct GenerationDefaults {
  std::optional<bool> do_sample;  // false: greedy decoding (temperature 0), whatever temperature says
  std::optional<float> temperature;
  std::optional<int32_t> top_k;  // an integer beyond int32 is clamped to it
  std::optional<float> top_p;

  // p with the defaults the file gives: temperature 0 when do_sample is false, else its temperature;
  // its top_k and top_p. What the file does not give stays as in p. Call it first and set what the
  // user chose afterwards (the CLI's generate: flags override the file). Not validated here
  // (SamplerParams::validate, which generate() runs, refuses values out of range).
  SamplerParams apply_to(SamplerParams p) const {
    if (do_sample == false) p.temperature = 0.0f;
    else if (temperature) p.temperature = *temperature;
    if (top_k) p.top_k = *top_k;
    if (top_p) p.top_p = *top_p;
    return p;
  }
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
  uint64_t state_bytes = 0;         // bytes of one Session's recurrent state (as stored: LoadOptions::state_dtype)
  std::string state_dtype = "f32";  // "f32" or "f16" (LoadOptions::state_dtype)
  // Elements of the layers' projection matrices (q, k, v, g, o, FFN): each costs 2 FLOPs per token.
  // The head adds 2·vocab·hidden per token that needs logits (a prefill: only its last, by default).
  uint64_t layer_matrix_params = 0;
  // dtype of the projection matrices: "F32", "F16", "BF16", "q8_0", "q4_0", "q4_k" or "mixed"
  std::string weight_dtype;
  std::string embedding_dtype;  // dtype of the embedding table, and of the LM head (the same
  std::string head_dtype;       // table when tied)
  std::string device;         // backend that runs it: "cpu" or "cuda (<GPU name>)"
  int threads = 1;
  bool bf16_activations = false;  // LoadOptions::bf16_activations was asked for and applies
  std::vector<int64_t> eos_token_ids;  // config.json and generation_config.json, merged
  GenerationDefaults generation;       // sampling defaults of generation_config.json (none for random models)
  int64_t bos_token_id = -1;
  double load_ms = 0;  // wall time of Model::load
  // Identity of the model for state snapshots (which carry it): a hash of the architecture and of
  // every weight byte as the checkpoint stores it (before any LoadOptions::dtype conversion, so the
  // same checkpoint loaded with another dtype or device has the same fingerprint), computed once at
  // load. Random models: of their generated weights (so of the spec and seed).
  uint64_t fingerprint = 0;
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
  // "f32", "f16" or "bf16": storage of the matrices; "q8_0", "q4_0" or "q4_k": the projection
  // matrices quantized (from fp32 random values), the head q8_0 and the embedding bf16 (quantize's
  // default policy)
  std::string dtype = "bf16";
  uint64_t seed = 1;
};

// Neither copyable nor movable: always held through the shared_ptr that load()/random() return, so
// there is no moved-from Model.
class RETNET_API Model {
 public:
  // Builds a random-weight model in memory (see RandomModelSpec). Throws Error on a bad shape.
  // Thread-safe (independent calls may run concurrently); options.on_progress runs on this thread.
  static std::shared_ptr<const Model> random(const RandomModelSpec& spec, const LoadOptions& options = {});

  // Loads a Hugging Face-style model directory (config.json + model.safetensors or sharded).
  // Throws Error naming the file, key or tensor on any problem, or when on_progress returns false.
  // Before allocating anything large it adds up the host memory the model and one session will use
  // (weights in place or converted, norm vectors, state, a prefill block's workspace) and throws
  // Error saying how much it needs and how much is available (MemAvailable, or the cgroup limit)
  // when that does not fit; random() does the same for its shape.
  // The caller owns the returned model (shared: copy the pointer to share it; the weights stay
  // mapped until the last Session and pointer are gone). Thread-safe (independent calls may run
  // concurrently); options.on_progress runs on the calling thread.
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  // Valid as long as the Model; immutable, so it may be read from any thread.
  const ModelInfo& info() const;

  // The library's own view of the loaded weights (Impl is not defined in public headers).
  struct RETNET_LOCAL Impl;
  const Impl& impl() const { return *impl_; }

 private:
  RETNET_LOCAL explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct PrefillOptions {
  Mode mode = Mode::Chunkwise;
  int64_t chunk_size = 0;   // 0 = the model's default (config recurrent_chunk_size / 64 for fla)
  bool all_logits = false;  // return logits for every token, not only the last
  // Cancellation (and progress): called on the calling thread before each block of the prefill with
  // the tokens this call has absorbed so far and its total. A block is up to 512 tokens chunkwise
  // (a whole number of chunks; one chunk if the chunk is longer), the whole call in parallel mode and
  // one token in recurrent mode. Return false to stop: prefill() then returns an empty view (which it
  // never does otherwise) and logits() is empty; the state holds exactly the whole blocks absorbed
  // before, as a prefill of only those tokens would (never part of a block), position() and stats()
  // count them, and prefilling the remaining tokens continues exactly as the uncancelled call would
  // have. A cancel therefore takes effect within one block: about 45 ms for the bundled model on two
  // cores, but several seconds for a 1.3B model on a few CPU cores. An exception thrown by the
  // callback propagates, with the state as after a cancel at that point. Must not call into the session.
  std::function<bool(int64_t done, int64_t total)> on_progress;
};

struct GenerateOptions {
  // < 0: until an end-of-sequence token. 0: the prompt is absorbed (prefilled) and nothing sampled.
  int64_t max_tokens = 128;
  SamplerParams sampler;     // temperature 0 = greedy
  bool ignore_eos = false;
  // Tokens that end generation (not emitted). Empty: the model's eos_token_id (config.json and
  // generation_config.json), else the tokenizer's EOS.
  std::vector<int32_t> stop_tokens;
  bool add_special = true;  // BOS/EOS around the prompt as the tokenizer config asks
  // How the prompt is absorbed (chunkwise by default); its on_progress cancels the prompt's prefill
  // (generate() then returns Stop::Callback with prompt_tokens counting the tokens absorbed).
  PrefillOptions prefill;
};

// One generated token, as Session::generate passes it to its callback. Both views point into
// generate()'s buffers and are valid only during the callback: copy them to keep them.
//  * text: the UTF-8 text this token completes. It holds only whole characters (empty while a
//    multi-byte character is still incomplete, the whole character arriving with its last byte);
//    the concatenation of all texts is exactly the tokenizer's decode of all generated ids.
//  * bytes: the raw bytes of this token itself (Tokenizer::token_bytes; the first token emitted by
//    this generate() call counts as the start of the text), available at once and possibly not
//    valid UTF-8: an emoji split over three byte-level tokens gives 1-2 of its bytes per token.
//    For tokenizers without cross-token decoder rules (see token_bytes), the concatenation of all
//    bytes equals that of all texts whenever the generated bytes are valid UTF-8. Special tokens
//    (generated only with ignore_eos or when not in stop_tokens) are skipped as in decode(): both
//    text and bytes are empty for them.
// A final event with id -1 carries what was held back at the end (an incomplete character, as
// U+FFFD) in text, if anything was; its bytes are empty (they came with the earlier tokens).
struct TokenEvent {
  int32_t id;
  std::string_view text;
  std::string_view bytes;
};

struct GenerateResult {
  std::string text;  // everything generated
  // prompt_tokens: the prompt's tokens absorbed into the state (all of them unless the prefill was
  // cancelled through GenerateOptions::prefill.on_progress).
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prompt_ms = 0, eval_ms = 0;
  // Callback: on_token returned false, or prefill.on_progress did (then nothing was generated).
  enum class Stop { Length, EndOfSequence, Callback } stop = Stop::Length;
};

struct SessionStats {
  int64_t prompt_tokens = 0;  // absorbed by prefill()
  int64_t eval_tokens = 0;    // absorbed by decode()/decode_batch()
  double prompt_ms = 0, eval_ms = 0;
  double load_ms = 0;  // wall time of the Model's load (ModelInfo::load_ms), shared by its sessions
};

class RETNET_API Session {
 public:
  // A new sequence at position 0 on `model` (kept alive by the session). Allocates the state
  // (ModelInfo::state_bytes) and a workspace on the model's backend; throws Error for a null model.
  // Thread-safe: sessions of one model may be created on any threads.
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  // Moving keeps every view this session handed out valid (they point into the moved state). A
  // moved-from session holds no state: every member function below throws Error saying so (also
  // decode_batch with it among the sessions); assigning a session to it, or destroying it, is fine.
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Everything below: not thread-safe on one Session (one thread at a time); sessions of one model
  // may be used on different threads concurrently.

  // Absorbs tokens into the state and returns logits: [vocab] for the last token, or
  // [tokens.size() * vocab] with all_logits. The view points into this session and stays valid
  // until the next prefill/decode/decode_batch/generate/reset/load_state on it or its destruction.
  // Throws Error for no tokens, an id outside the vocabulary, a negative chunk size or a parallel
  // prefill longer than 8192 tokens, before touching the state. Returns an empty view when
  // options.on_progress cancelled it (whole blocks absorbed; see PrefillOptions).
  std::span<const float> prefill(std::span<const int32_t> tokens, const PrefillOptions& options = {});
  // One recurrent step; returns [vocab] logits of this token, valid as prefill's. Throws Error for
  // an id outside the vocabulary (state unchanged). Does not allocate.
  std::span<const float> decode(int32_t token);

  // Advances each session by one token in a single step that reads the weights once (batch
  // decoding); results equal decoding each alone, bit for bit. All sessions must share one Model
  // and be distinct (Error otherwise, nothing changed). Afterwards each session's logits() holds its
  // [vocab] row. The caller must not use any of these sessions on another thread during the call.
  static void decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens);
  // Logits of the last prefill/decode/decode_batch call of this session (same view those calls
  // returned, same lifetime); empty after construction, clone(), reset() and load_state().
  std::span<const float> logits() const;

  // Encodes the prompt, prefills it and samples up to max_tokens, calling on_token for each
  // (return false from it to stop) on the calling thread. Continues from the current state, so a
  // chat can call it repeatedly on one session; every emitted token enters the state. The prompt is
  // always absorbed, also with max_tokens = 0 (context fed without sampling). The callback
  // must not call into this session. Throws Error for invalid sampler parameters, a tokenizer
  // larger than the model's vocabulary or an empty prompt mid-stream; an exception thrown by the
  // callback propagates (the state then holds the tokens emitted before it).
  GenerateResult generate(const Tokenizer& tokenizer, std::string_view prompt, const GenerateOptions& options = {},
                          const std::function<bool(const TokenEvent&)>& on_token = {});
  // The same from token ids (no encoding, no BOS or EOS added): prefills prompt[absorbed:] and
  // samples; the sampler's penalties see the whole prompt, as if all of it had been prefilled here.
  // absorbed > 0 resumes a state that already holds exactly prompt[0, absorbed) since position 0 (a
  // prompt cache: load_state, then history_matches); Error, session unchanged, when it does not or
  // when absorbed is not in [0, prompt.size()) (a snapshot has no logits: at least one token must
  // be prefilled). GenerateResult::prompt_tokens counts the tokens prefilled.
  GenerateResult generate(const Tokenizer& tokenizer, std::span<const int32_t> prompt, int64_t absorbed,
                          const GenerateOptions& options = {},
                          const std::function<bool(const TokenEvent&)>& on_token = {});
  SessionStats stats() const;  // cumulative since construction or reset(); a copy

  int64_t position() const;  // tokens absorbed so far (the absolute position of the next token)
  // Whether the tokens absorbed since construction or reset() (by prefill, decode, decode_batch and
  // generate, or carried in by load_state) are exactly `tokens`, in order. Snapshots store a 128-bit
  // digest of them, not the tokens; false when a call failed part way (the history is not known).
  bool history_matches(std::span<const int32_t> tokens) const;
  void reset();              // back to the empty state at position 0; clears stats() and logits()

  // State snapshots. A RetNet state has a constant size whatever the context length, so a long
  // prompt can be prefilled once, saved, and resumed in another process. The snapshot carries a
  // format version, the state dtype, the model's fingerprint, the position, a digest of the tokens
  // absorbed (history_matches) and a checksum; loading a snapshot of another model or format
  // version, a truncated or corrupted one, or one holding NaN or Inf, throws Error and leaves this
  // session unchanged. Logits are not saved: decode the next token after load_state.
  std::vector<uint8_t> save_state() const;  // the caller owns the bytes
  void load_state(std::span<const uint8_t> bytes);  // bytes are only read during the call
  // File forms. Saving goes through write_file_atomically (atomic_write.hpp): symbolic links are
  // followed to the file they name; a regular file is replaced through a synced temporary renamed
  // into place (keeping its permission bits), so a failure never leaves a partial snapshot under the
  // target name; a device or FIFO is written in place. Error names the path and the OS reason.
  void save_state_file(const std::string& path) const;
  void load_state_file(const std::string& path);
  // An independent copy of the state and position (stats and logits start empty), on the same
  // model; the caller owns it and may hand it to another thread.
  Session clone() const;
  // The model this session runs; valid as long as the session.
  const Model& model() const;

 private:
  struct RETNET_LOCAL Impl;
  RETNET_LOCAL explicit Session(std::unique_ptr<Impl> impl);
  RETNET_LOCAL Impl& live() const;  // *impl_, or Error when this session was moved from
  std::unique_ptr<Impl> impl_;
};

}  // namespace retnet
