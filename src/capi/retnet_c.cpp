// The C API: thin wrappers over the C++ API that turn exceptions into status codes.
#include "retnet/retnet.h"

#include <memory>
#include <string>

#include "retnet/retnet.hpp"

struct retnet_model {
  std::shared_ptr<const retnet::Model> m;
};
struct retnet_session {
  retnet::Session s;
};
struct retnet_tokenizer {
  retnet::Tokenizer t;
};

namespace {
thread_local std::string g_last_error;

template <class F>
retnet_status guard(F&& f) {
  try {
    f();
    return RETNET_OK;
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error";
  }
  return RETNET_ERROR;
}

retnet_status invalid(const char* what) {
  g_last_error = std::string("invalid argument: ") + what;
  return RETNET_INVALID_ARGUMENT;
}
}  // namespace

extern "C" {

const char* retnet_last_error(void) { return g_last_error.c_str(); }

retnet_status retnet_model_load(const char* dir, const retnet_load_options* options, retnet_model** out) {
  if (!dir || !out) return invalid("dir and out must not be NULL");
  *out = nullptr;
  return guard([&] {
    retnet::LoadOptions lo;
    if (options) {
      if (options->device < 0 || options->device > 2) throw retnet::Error("device must be 0 (auto), 1 (cpu) or 2 (cuda)");
      lo.device = options->device == 1 ? retnet::Device::Cpu : options->device == 2 ? retnet::Device::Cuda : retnet::Device::Auto;
      lo.threads = options->threads;
      lo.check_weights = options->check_weights != 0;
      lo.bf16_activations = options->bf16_activations != 0;
      if (options->angles < 0 || options->angles > 1) throw retnet::Error("angles must be 0 (reference) or 1 (exact)");
      lo.angles = options->angles == 1 ? retnet::Angles::Exact : retnet::Angles::Reference;
      if (options->quantize) lo.quantize = options->quantize;
    }
    *out = new retnet_model{retnet::Model::load(dir, lo)};
  });
}

void retnet_model_free(retnet_model* model) { delete model; }

int64_t retnet_model_vocab_size(const retnet_model* model) { return model ? model->m->info().vocab_size : -1; }

retnet_status retnet_session_new(const retnet_model* model, retnet_session** out) {
  if (!model || !out) return invalid("model and out must not be NULL");
  *out = nullptr;
  return guard([&] { *out = new retnet_session{retnet::Session(model->m)}; });
}

void retnet_session_free(retnet_session* session) { delete session; }

retnet_status retnet_session_prefill(retnet_session* session, const int32_t* tokens, size_t n, const float** logits) {
  if (!session || (!tokens && n) || !logits) return invalid("session, tokens and logits must not be NULL");
  return guard([&] { *logits = session->s.prefill(std::span<const int32_t>(tokens, n)).data(); });
}

retnet_status retnet_session_prefill_with_progress(retnet_session* session, const int32_t* tokens, size_t n,
                                                   retnet_progress_callback on_progress, void* user,
                                                   const float** logits) {
  if (!session || (!tokens && n) || !logits) return invalid("session, tokens and logits must not be NULL");
  bool cancelled = false;
  const retnet_status st = guard([&] {
    retnet::PrefillOptions po;
    if (on_progress) po.on_progress = [&](int64_t done, int64_t total) { return on_progress(done, total, user) == 0; };
    const auto lg = session->s.prefill(std::span<const int32_t>(tokens, n), po);
    cancelled = lg.empty();
    *logits = cancelled ? nullptr : lg.data();
  });
  return st == RETNET_OK && cancelled ? RETNET_CANCELLED : st;
}

retnet_status retnet_session_decode(retnet_session* session, int32_t token, const float** logits) {
  if (!session || !logits) return invalid("session and logits must not be NULL");
  return guard([&] { *logits = session->s.decode(token).data(); });
}

int64_t retnet_session_position(const retnet_session* session) { return session ? session->s.position() : -1; }

retnet_status retnet_session_reset(retnet_session* session) {
  if (!session) return invalid("session must not be NULL");
  return guard([&] { session->s.reset(); });
}

retnet_status retnet_session_save_state(const retnet_session* session, const char* path) {
  if (!session || !path) return invalid("session and path must not be NULL");
  return guard([&] { session->s.save_state_file(path); });
}

retnet_status retnet_session_load_state(retnet_session* session, const char* path) {
  if (!session || !path) return invalid("session and path must not be NULL");
  return guard([&] { session->s.load_state_file(path); });
}

retnet_status retnet_tokenizer_load(const char* dir, retnet_tokenizer** out) {
  if (!dir || !out) return invalid("dir and out must not be NULL");
  *out = nullptr;
  return guard([&] { *out = new retnet_tokenizer{retnet::Tokenizer::load(dir)}; });
}

void retnet_tokenizer_free(retnet_tokenizer* tokenizer) { delete tokenizer; }

retnet_status retnet_tokenize(const retnet_tokenizer* tokenizer, const char* text, size_t len, int add_special,
                              int32_t* ids, size_t capacity, size_t* n_out) {
  if (!tokenizer || (!text && len) || !n_out || (!ids && capacity)) return invalid("NULL pointer");
  return guard([&] {
    const auto v = tokenizer->t.encode(std::string_view(text ? text : "", len), add_special != 0);
    *n_out = v.size();
    for (size_t i = 0; i < v.size() && i < capacity; ++i) ids[i] = v[i];
  });
}

void retnet_generate_options_default(retnet_generate_options* o) {
  if (!o) return;
  const retnet::GenerateOptions d;
  o->max_tokens = int32_t(d.max_tokens);
  o->temperature = d.sampler.temperature;
  o->top_k = d.sampler.top_k;
  o->top_p = d.sampler.top_p;
  o->min_p = d.sampler.min_p;
  o->repeat_penalty = d.sampler.repeat_penalty;
  o->seed = d.sampler.seed;
  o->ignore_eos = 0;
  o->on_prefill_progress = nullptr;
}

retnet_status retnet_generate_options_from_model(const retnet_model* model, retnet_generate_options* o) {
  if (!model || !o) return invalid("model and options must not be NULL");
  retnet_generate_options_default(o);
  const retnet::SamplerParams p = model->m->info().generation.apply_to(retnet::GenerateOptions{}.sampler);
  o->temperature = p.temperature;
  o->top_k = p.top_k;
  o->top_p = p.top_p;
  return RETNET_OK;
}

retnet_status retnet_generate(retnet_session* session, const retnet_tokenizer* tokenizer, const char* prompt,
                              const retnet_generate_options* options, retnet_token_callback on_token, void* user) {
  if (!session || !tokenizer || !prompt) return invalid("session, tokenizer and prompt must not be NULL");
  bool cancelled = false;
  const retnet_status st = guard([&] {
    retnet_generate_options o;
    retnet_generate_options_default(&o);
    if (options) o = *options;
    retnet::GenerateOptions go;
    go.max_tokens = o.max_tokens;
    go.sampler.temperature = o.temperature;
    go.sampler.top_k = o.top_k;
    go.sampler.top_p = o.top_p;
    go.sampler.min_p = o.min_p;
    go.sampler.repeat_penalty = o.repeat_penalty;
    go.sampler.seed = o.seed;
    go.ignore_eos = o.ignore_eos != 0;
    if (o.on_prefill_progress)
      go.prefill.on_progress = [&, cb = o.on_prefill_progress](int64_t done, int64_t total) {
        cancelled = cb(done, total, user) != 0;
        return !cancelled;
      };
    session->s.generate(tokenizer->t, prompt, go, [&](const retnet::TokenEvent& ev) {
      if (!on_token) return true;
      // Never NULL, even when empty: C callers may pass them straight to memcpy/fwrite.
      const retnet_token_event e{ev.id, ev.text.empty() ? "" : ev.text.data(), ev.text.size(),
                                 ev.bytes.empty() ? "" : ev.bytes.data(), ev.bytes.size()};
      return on_token(&e, user) == 0;
    });
  });
  return st == RETNET_OK && cancelled ? RETNET_CANCELLED : st;
}

}  // extern "C"
