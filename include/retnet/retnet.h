/* retnet — C API for bindings. Opaque handles; every call returns a status, and
 * retnet_last_error() gives the message of the last failure on the calling thread.
 *
 * Threads: a model may be shared by sessions on different threads; a session (and a tokenizer
 * stream) belongs to one thread at a time. Pointers returned by a call stay valid until the next
 * call on the same handle, or until it is freed. */
#ifndef RETNET_RETNET_H
#define RETNET_RETNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum retnet_status {
  RETNET_OK = 0,
  RETNET_ERROR = 1,            /* see retnet_last_error() */
  RETNET_INVALID_ARGUMENT = 2, /* a null handle or pointer, or a value out of range */
} retnet_status;

typedef struct retnet_model retnet_model;
typedef struct retnet_session retnet_session;
typedef struct retnet_tokenizer retnet_tokenizer;

typedef struct retnet_load_options {
  int device;  /* 0 auto, 1 cpu, 2 cuda */
  int threads; /* 0 = all hardware threads */
} retnet_load_options;

/* Message of the last failed call on this thread ("" if none). Valid until the next failing call. */
const char* retnet_last_error(void);

retnet_status retnet_model_load(const char* dir, const retnet_load_options* options /* may be NULL */,
                                retnet_model** out);
void retnet_model_free(retnet_model* model);
int64_t retnet_model_vocab_size(const retnet_model* model);

retnet_status retnet_session_new(const retnet_model* model, retnet_session** out);
void retnet_session_free(retnet_session* session);
/* Absorbs n tokens (chunkwise); *logits receives the last token's [vocab] logits. */
retnet_status retnet_session_prefill(retnet_session* session, const int32_t* tokens, size_t n, const float** logits);
/* One recurrent step. */
retnet_status retnet_session_decode(retnet_session* session, int32_t token, const float** logits);
int64_t retnet_session_position(const retnet_session* session);
retnet_status retnet_session_reset(retnet_session* session);
retnet_status retnet_session_save_state(const retnet_session* session, const char* path);
retnet_status retnet_session_load_state(retnet_session* session, const char* path);

/* Tokenizer of a model directory (tokenizer.json + tokenizer_config.json). */
retnet_status retnet_tokenizer_load(const char* dir, retnet_tokenizer** out);
void retnet_tokenizer_free(retnet_tokenizer* tokenizer);
/* Encodes UTF-8 text (BOS/EOS per the tokenizer config when add_special != 0). Writes up to
 * capacity ids and stores the full count in *n_out (call with capacity 0 to size the buffer). */
retnet_status retnet_tokenize(const retnet_tokenizer* tokenizer, const char* text, size_t len, int add_special,
                              int32_t* ids, size_t capacity, size_t* n_out);

/* Called for each generated token with its UTF-8-complete text (may be empty while a multi-byte
 * character is incomplete). Return non-zero to stop generation. */
typedef int (*retnet_token_callback)(int32_t token, const char* text, size_t len, void* user);

typedef struct retnet_generate_options {
  int32_t max_tokens;  /* < 0: until end of sequence */
  float temperature;   /* 0 = greedy */
  int32_t top_k;       /* <= 0: off */
  float top_p;         /* 1: off */
  float min_p;         /* 0: off */
  float repeat_penalty;
  uint64_t seed;
  int ignore_eos;
} retnet_generate_options;

/* Fills options with the library defaults. */
void retnet_generate_options_default(retnet_generate_options* options);

/* Prefills the prompt (UTF-8) and generates, calling on_token for each token. */
retnet_status retnet_generate(retnet_session* session, const retnet_tokenizer* tokenizer, const char* prompt,
                              const retnet_generate_options* options, retnet_token_callback on_token, void* user);

#ifdef __cplusplus
}
#endif

#endif /* RETNET_RETNET_H */
