/* The C API used from C (compiled as C11): load, session, prefill/decode, state save/load,
 * tokenize, generate with a callback, and errors as status codes. Exit code 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retnet/retnet.h"

static int failures = 0;
#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                      \
    }                                                                  \
  } while (0)

/* Collects a generation's events: the texts and the raw bytes, each concatenated. */
typedef struct collected {
  int events, tokens, empty_bytes, null_pointers;
  char text[4096], bytes[4096];
  size_t text_len, bytes_len;
} collected;

static int collect(const retnet_token_event* ev, void* user) {
  collected* c = (collected*)user;
  ++c->events;
  if (!ev->text || !ev->bytes) {
    ++c->null_pointers;
    return 1;
  }
  if (ev->token >= 0) {
    ++c->tokens;
    if (ev->bytes_len == 0) ++c->empty_bytes;
  }
  if (c->text_len + ev->text_len < sizeof c->text && c->bytes_len + ev->bytes_len < sizeof c->bytes) {
    memcpy(c->text + c->text_len, ev->text, ev->text_len);
    c->text_len += ev->text_len;
    memcpy(c->bytes + c->bytes_len, ev->bytes, ev->bytes_len);
    c->bytes_len += ev->bytes_len;
  }
  return 0; /* keep going */
}

/* Progress callback that cancels once `*(int64_t*)user` tokens or more are absorbed (<= 0: at once),
 * storing the count it saw there. */
static int cancel_after(int64_t done, int64_t total, void* user) {
  int64_t* at = (int64_t*)user;
  (void)total;
  if (done < *at) return 0;
  *at = done;
  return 1;
}

static int stop_at_three(const retnet_token_event* ev, void* user) {
  (void)ev;
  return ++*(int*)user >= 3;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: capi_test FIXTURE_DIR BUNDLED_MODEL_DIR\n");
    return 2;
  }
  retnet_model* model = NULL;
  retnet_load_options lo = {1, 1};
  CHECK(retnet_model_load(argv[1], &lo, &model) == RETNET_OK);
  CHECK(model != NULL);
  CHECK(retnet_model_vocab_size(model) > 0);

  retnet_session* a = NULL;
  retnet_session* b = NULL;
  CHECK(retnet_session_new(model, &a) == RETNET_OK);
  CHECK(retnet_session_new(model, &b) == RETNET_OK);
  const int32_t prompt[5] = {1, 7, 3, 9, 4};
  const float* la = NULL;
  CHECK(retnet_session_prefill(a, prompt, 5, &la) == RETNET_OK);
  CHECK(retnet_session_position(a) == 5);
  CHECK(la != NULL && isfinite(la[0]));

  /* State through a file: b resumes where a is and both decode identically. */
  const char* path = "capi_test_state.bin";
  CHECK(retnet_session_save_state(a, path) == RETNET_OK);
  CHECK(retnet_session_load_state(b, path) == RETNET_OK);
  CHECK(retnet_session_position(b) == 5);
  const float* da = NULL;
  const float* db = NULL;
  CHECK(retnet_session_decode(a, 2, &da) == RETNET_OK);
  CHECK(retnet_session_decode(b, 2, &db) == RETNET_OK);
  CHECK(memcmp(da, db, sizeof(float) * (size_t)retnet_model_vocab_size(model)) == 0);
  remove(path);

  /* Errors are status codes with a message, never a crash. */
  CHECK(retnet_session_decode(a, 1 << 30, &da) == RETNET_ERROR);
  CHECK(strstr(retnet_last_error(), "outside the vocabulary") != NULL);
  CHECK(retnet_session_decode(NULL, 1, &da) == RETNET_INVALID_ARGUMENT);
  retnet_model* none = NULL;
  CHECK(retnet_model_load("/nonexistent/model", NULL, &none) == RETNET_ERROR);
  CHECK(none == NULL && strlen(retnet_last_error()) > 0);
  CHECK(retnet_session_reset(a) == RETNET_OK && retnet_session_position(a) == 0);

  /* Angles: 0 reference, 1 exact; anything else is refused. */
  retnet_load_options lx = {1, 1, 0, 0, 1};
  retnet_model* exact = NULL;
  CHECK(retnet_model_load(argv[1], &lx, &exact) == RETNET_OK && exact != NULL);
  retnet_model_free(exact);
  lx.angles = 2;
  CHECK(retnet_model_load(argv[1], &lx, &exact) == RETNET_ERROR && exact == NULL);
  CHECK(strstr(retnet_last_error(), "angles") != NULL);

  /* Quantize at load: a known type loads on the CPU, an unknown one is refused by name. */
  retnet_load_options lq = {1, 1, 0, 0, 0, "q8_0"};
  retnet_model* quant = NULL;
  CHECK(retnet_model_load(argv[1], &lq, &quant) == RETNET_OK && quant != NULL);
  retnet_model_free(quant);
  lq.quantize = "q3";
  CHECK(retnet_model_load(argv[1], &lq, &quant) == RETNET_ERROR && quant == NULL);
  CHECK(strstr(retnet_last_error(), "quantize: 'q3' is not one of q8_0, q4_0, q4_k") != NULL);

  /* A prefill cancelled from its progress callback: whole blocks absorbed, then the rest continues
   * exactly as one uncancelled prefill. */
  {
    enum { N = 1100 };
    int32_t many[N];
    for (int i = 0; i < N; ++i) many[i] = (int32_t)((i * 31 + 5) % retnet_model_vocab_size(model));
    int64_t at = 1; /* cancel before the second block */
    const float* lc = &la[0];
    CHECK(retnet_session_prefill_with_progress(a, many, N, cancel_after, &at, &lc) == RETNET_CANCELLED);
    CHECK(lc == NULL);
    CHECK(at > 0 && at < N && retnet_session_position(a) == at);
    const float* lrest = NULL;
    CHECK(retnet_session_prefill(a, many + at, (size_t)(N - at), &lrest) == RETNET_OK);
    const float* lall = NULL;
    CHECK(retnet_session_reset(b) == RETNET_OK);
    CHECK(retnet_session_prefill_with_progress(b, many, N, NULL, NULL, &lall) == RETNET_OK);
    CHECK(lrest && lall && memcmp(lrest, lall, sizeof(float) * (size_t)retnet_model_vocab_size(model)) == 0);
    at = 0; /* cancel at once: nothing absorbed */
    CHECK(retnet_session_prefill_with_progress(b, many, N, cancel_after, &at, &lall) == RETNET_CANCELLED);
    CHECK(retnet_session_position(b) == N);
    CHECK(retnet_session_reset(a) == RETNET_OK);
  }

  /* Tokenizer and generation on the bundled model. */
  retnet_model* kjv = NULL;
  retnet_tokenizer* tok = NULL;
  retnet_session* s = NULL;
  CHECK(retnet_model_load(argv[2], &lo, &kjv) == RETNET_OK);
  CHECK(retnet_tokenizer_load(argv[2], &tok) == RETNET_OK);
  CHECK(retnet_session_new(kjv, &s) == RETNET_OK);
  size_t n = 0;
  const char* text = "In the beginning";
  CHECK(retnet_tokenize(tok, text, strlen(text), 1, NULL, 0, &n) == RETNET_OK && n > 1);
  int32_t ids[64];
  CHECK(retnet_tokenize(tok, text, strlen(text), 1, ids, 64, &n) == RETNET_OK);
  retnet_generate_options go;
  /* The bundled model's generation_config.json: temperature 0.8, top_k 40, top_p 0.95. */
  CHECK(retnet_generate_options_from_model(kjv, &go) == RETNET_OK);
  CHECK(go.temperature == 0.8f && go.top_k == 40 && go.top_p == 0.95f && go.max_tokens == 128);
  CHECK(retnet_generate_options_from_model(NULL, &go) == RETNET_INVALID_ARGUMENT);
  CHECK(retnet_generate_options_from_model(kjv, NULL) == RETNET_INVALID_ARGUMENT);
  retnet_generate_options_default(&go);
  go.max_tokens = 12;
  go.ignore_eos = 1;
  go.seed = 7;
  collected got;
  memset(&got, 0, sizeof got);
  CHECK(retnet_generate(s, tok, text, &go, collect, &got) == RETNET_OK);
  CHECK(got.tokens == 12 && got.events >= 12); /* 12 tokens, plus possibly one final flush event */
  CHECK(got.null_pointers == 0);
  /* Byte-level BPE: every ordinary token carries at least one byte, and the bytes of all tokens
   * are the generated text (KJV text is valid UTF-8, so no U+FFFD repair separates them). */
  CHECK(got.empty_bytes == 0);
  CHECK(got.bytes_len > 0 && got.bytes_len == got.text_len && memcmp(got.bytes, got.text, got.text_len) == 0);
  /* Greedy generation is deterministic: the same prompt on a fresh session gives the same bytes. */
  retnet_session* s2 = NULL;
  CHECK(retnet_session_new(kjv, &s2) == RETNET_OK);
  go.temperature = 0;
  collected g1, g2;
  memset(&g1, 0, sizeof g1);
  memset(&g2, 0, sizeof g2);
  CHECK(retnet_generate(s2, tok, text, &go, collect, &g1) == RETNET_OK);
  CHECK(retnet_session_reset(s2) == RETNET_OK);
  CHECK(retnet_generate(s2, tok, text, &go, collect, &g2) == RETNET_OK);
  CHECK(g1.bytes_len == g2.bytes_len && memcmp(g1.bytes, g2.bytes, g1.bytes_len) == 0);
  CHECK(retnet_generate(s2, tok, text, &go, NULL, NULL) == RETNET_OK); /* no callback is fine */
  retnet_session_free(s2);
  int stops = 0;
  CHECK(retnet_generate(s, tok, " And", &go, stop_at_three, &stops) == RETNET_OK);
  CHECK(stops == 3);

  /* max_tokens = 0 absorbs the prompt and samples nothing; a cancelled prompt is RETNET_CANCELLED. */
  retnet_session* s3 = NULL;
  CHECK(retnet_session_new(kjv, &s3) == RETNET_OK);
  go.max_tokens = 0;
  CHECK(retnet_tokenize(tok, text, strlen(text), 1, ids, 64, &n) == RETNET_OK);
  memset(&got, 0, sizeof got);
  CHECK(retnet_generate(s3, tok, text, &go, collect, &got) == RETNET_OK);
  CHECK(retnet_session_position(s3) == (int64_t)n && got.tokens == 0);
  int64_t at0 = 0;
  go.on_prefill_progress = cancel_after;
  CHECK(retnet_generate(s3, tok, " And", &go, NULL, &at0) == RETNET_CANCELLED);
  CHECK(retnet_session_position(s3) == (int64_t)n);
  retnet_session_free(s3);

  retnet_session_free(s);
  retnet_tokenizer_free(tok);
  retnet_model_free(kjv);
  retnet_session_free(a);
  retnet_session_free(b);
  retnet_model_free(model);
  if (failures) {
    fprintf(stderr, "%d failed\n", failures);
    return 1;
  }
  printf("capi_test: all checks passed\n");
  return 0;
}
