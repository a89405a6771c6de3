/* retnet — C API for bindings. Opaque handles; every call returns a status, and
 * retnet_last_error() gives the message of the last failure on the calling thread.
 *
 * Ownership: a handle returned through an out-parameter belongs to the caller, who frees it with the
 * matching retnet_*_free (free functions accept NULL). A session and a tokenizer stay usable after
 * the handles they were made from are freed (they keep what they need alive). Pointers the library
 * returns (logits, error messages, callback arguments) point into library memory: each call says
 * how long they stay valid; never free them.
 *
 * Threads: a model and a tokenizer are immutable and may be used from any number of threads at once.
 * A session belongs to one thread at a time (sessions of one model may run on different threads
 * concurrently; on the CPU their forward passes take turns on the model's thread pool). */
#ifndef RETNET_RETNET_H
#define RETNET_RETNET_H

#include <stddef.h>
#include <stdint.h>

#include "retnet/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum retnet_status {
  RETNET_OK = 0,
  RETNET_ERROR = 1,            /* see retnet_last_error() */
  RETNET_INVALID_ARGUMENT = 2, /* a null handle or pointer, or a value out of range */
  RETNET_CANCELLED = 3,        /* a progress callback asked to stop (not an error; see retnet_progress_callback) */
} retnet_status;

typedef struct retnet_model retnet_model;
typedef struct retnet_session retnet_session;
typedef struct retnet_tokenizer retnet_tokenizer;

/* Zero-initialise it (e.g. `retnet_load_options o = {0};`) and set what you need: every field's
 * zero is the default. */
typedef struct retnet_load_options {
  int device;        /* 0 auto, 1 cpu, 2 cuda */
  int threads;       /* 0 = all hardware threads */
  int check_weights; /* non-zero: scan every weight for NaN/Inf first; the error names the tensor
                        and element (LoadOptions::check_weights; reads the checkpoint once more) */
  int bf16_activations; /* non-zero: prefill products against BF16 weights in bf16 on AVX512-BF16 CPUs
                           (about 2x faster prefill, logits no longer exact; ignored where it does not
                           apply; LoadOptions::bf16_activations) */
  int angles;           /* 0 reference: float32(n)·θ as the PyTorch implementations compute it (reproduces
                           them); 1 exact: n·θ in float64, for long contexts (LoadOptions::angles) */
  const char* quantize; /* NULL or "": none; "q8_0", "q4_0" or "q4_k": quantize the projection matrices at
                           load for this run (LoadOptions::quantize) */
} retnet_load_options;

/* Message of the last failed call on this thread ("" if none), NUL-terminated. Owned by the library;
 * valid until the next failing call on this thread. Thread-safe (one message per thread). */
RETNET_API const char* retnet_last_error(void);

/* Loads a model directory (config.json + safetensors). *out receives a new model owned by the caller
 * (NULL on failure). options may be NULL (auto device, all threads). Thread-safe. */
RETNET_API retnet_status retnet_model_load(const char* dir, const retnet_load_options* options, retnet_model** out);
/* Frees the caller's handle; sessions made from it keep the model alive until they are freed.
 * Must not run concurrently with other calls on the same handle. */
RETNET_API void retnet_model_free(retnet_model* model);
/* Logit vector length (-1 for NULL). Thread-safe. */
RETNET_API int64_t retnet_model_vocab_size(const retnet_model* model);

/* A new session (position 0) on model; *out is owned by the caller (NULL on failure). Thread-safe. */
RETNET_API retnet_status retnet_session_new(const retnet_model* model, retnet_session** out);
RETNET_API void retnet_session_free(retnet_session* session);
/* Absorbs n > 0 tokens (chunkwise); *logits receives the last token's [vocab] logits, owned by the
 * session and valid until the next prefill/decode/generate/reset/load_state on it or its free.
 * An id outside the vocabulary is RETNET_ERROR and leaves the state unchanged. */
RETNET_API retnet_status retnet_session_prefill(retnet_session* session, const int32_t* tokens, size_t n,
                                                const float** logits);
/* Called on the calling thread before each block of a prefill (up to 512 tokens) with the tokens this
 * call has absorbed so far and its total, and the caller's user pointer. Return non-zero to stop: the
 * call then returns RETNET_CANCELLED with *logits = NULL, and the session holds exactly the whole
 * blocks absorbed before (retnet_session_position says how many tokens; never part of a block), so
 * prefilling the remaining tokens continues as if nothing had stopped. Must not call into the session.
 * A cancel takes effect within one block (PrefillOptions::on_progress in retnet.hpp). */
typedef int (*retnet_progress_callback)(int64_t done, int64_t total, void* user);
/* retnet_session_prefill with a progress callback (NULL: none) that may cancel it. */
RETNET_API retnet_status retnet_session_prefill_with_progress(retnet_session* session, const int32_t* tokens, size_t n,
                                                              retnet_progress_callback on_progress, void* user,
                                                              const float** logits);
/* One recurrent step; *logits as for prefill. */
RETNET_API retnet_status retnet_session_decode(retnet_session* session, int32_t token, const float** logits);
/* Tokens absorbed so far (-1 for NULL). */
RETNET_API int64_t retnet_session_position(const retnet_session* session);
/* Back to the empty state at position 0. */
RETNET_API retnet_status retnet_session_reset(retnet_session* session);
/* State snapshot to / from a file (versioned, fingerprinted, checksummed; see Session::save_state).
 * Saving writes a temporary file and renames it into place. Loading a snapshot of another model or
 * a damaged one is RETNET_ERROR and leaves the session unchanged. */
RETNET_API retnet_status retnet_session_save_state(const retnet_session* session, const char* path);
RETNET_API retnet_status retnet_session_load_state(retnet_session* session, const char* path);

/* Tokenizer of a model directory (tokenizer.json + tokenizer_config.json); *out owned by the caller.
 * Thread-safe; a tokenizer may then be used from any number of threads at once. */
RETNET_API retnet_status retnet_tokenizer_load(const char* dir, retnet_tokenizer** out);
RETNET_API void retnet_tokenizer_free(retnet_tokenizer* tokenizer);
/* Encodes len bytes of UTF-8 text (BOS/EOS per the tokenizer config when add_special != 0; invalid
 * UTF-8 is repaired, never an error). Writes up to capacity ids into the caller's buffer and stores
 * the full count in *n_out (call with capacity 0 to size the buffer). Thread-safe. */
RETNET_API retnet_status retnet_tokenize(const retnet_tokenizer* tokenizer, const char* text, size_t len,
                                         int add_special, int32_t* ids, size_t capacity, size_t* n_out);

/* One generated token, as passed to retnet_token_callback. Every pointer is non-NULL, not
 * NUL-terminated (use the lengths), owned by the library and valid only during the callback.
 *  text:  the UTF-8 text this token completes: whole characters only, empty while a multi-byte
 *         character is incomplete; all texts concatenated are the decode of the generated ids.
 *  bytes: the raw bytes of this token itself (the C++ Tokenizer::token_bytes), at once: possibly
 *         part of a multi-byte character, so not valid UTF-8 on its own. Empty for special tokens.
 *  token: the token id, or -1 for a final event carrying held-back text (an incomplete character,
 *         as U+FFFD) and no bytes.
 * Later versions may append fields (the library allocates the event; callers only read it). */
typedef struct retnet_token_event {
  int32_t token;
  const char* text;
  size_t text_len;
  const char* bytes;
  size_t bytes_len;
} retnet_token_event;

/* Called on the generating thread for each token; must not call into the same session. Return
 * non-zero to stop generation. */
typedef int (*retnet_token_callback)(const retnet_token_event* event, void* user);

typedef struct retnet_generate_options {
  int32_t max_tokens;  /* < 0: until end of sequence; 0: only absorb the prompt */
  float temperature;   /* 0 = greedy */
  int32_t top_k;       /* <= 0: off */
  float top_p;         /* 1: off */
  float min_p;         /* 0: off */
  float repeat_penalty;
  uint64_t seed;
  int ignore_eos;
  /* Polled during the prompt's prefill with retnet_generate's user pointer (NULL: none); non-zero
   * stops it: retnet_generate then returns RETNET_CANCELLED, having absorbed whole blocks of the
   * prompt and generated nothing. */
  retnet_progress_callback on_prefill_progress;
} retnet_generate_options;

/* Fills options with the library defaults (call it, then change fields: later versions may append
 * fields, whose defaults it sets). */
RETNET_API void retnet_generate_options_default(retnet_generate_options* options);
/* Fills options with the library defaults, then with the sampling defaults of the model directory's
 * generation_config.json (the C++ ModelInfo::generation): temperature 0 when it says do_sample
 * false, else its temperature; its top_k and top_p. Set your own choices afterwards. A NULL
 * pointer is RETNET_INVALID_ARGUMENT. Thread-safe. */
RETNET_API retnet_status retnet_generate_options_from_model(const retnet_model* model,
                                                            retnet_generate_options* options);

/* Prefills the prompt (NUL-terminated UTF-8) and generates, calling on_token (may be NULL) for each
 * token. Continues from the session's current state; every emitted token enters it. options may be
 * NULL (defaults). Invalid options are RETNET_ERROR naming the field. The prompt is always absorbed,
 * also with max_tokens = 0. RETNET_CANCELLED: see on_prefill_progress. */
RETNET_API retnet_status retnet_generate(retnet_session* session, const retnet_tokenizer* tokenizer,
                                         const char* prompt, const retnet_generate_options* options,
                                         retnet_token_callback on_token, void* user);

#ifdef __cplusplus
}
#endif

#endif /* RETNET_RETNET_H */
