// retnet._retnet: Session.generate (text at once) and Session.stream (an iterator of text pieces).
//
// Both run the library's Session::generate with the same callback, so a stream yields exactly the
// pieces whose concatenation the non-streaming call returns (same seed, same text). The stream runs
// generate() on a worker thread in lockstep with the consumer: the worker hands one piece over, then
// waits inside the token callback until the consumer asks for the next one, so when the consumer stops
// iterating (close(), break, garbage collection) the callback returns false and the session holds
// exactly the tokens of the pieces yielded (plus tokens that produced no text, e.g. half a character).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "binding.hpp"

namespace retnet::py {

namespace {

// Text-level stop strings. push() returns the text that can be emitted now: everything before the first
// occurrence of a stop string (then hit() is true), and otherwise all but the longest tail that could
// still start one (held back until the next piece or flush()). Pieces are whole UTF-8 characters and a
// held-back tail starts where a stop string starts (at a character), so what comes out stays whole
// characters.
class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string push(std::string_view text) {
    if (hit_) return {};
    pending_ += text;
    if (stops_.empty()) return std::exchange(pending_, {});
    size_t first = std::string::npos;
    for (const std::string& s : stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      hit_ = true;
      std::string out = pending_.substr(0, first);
      pending_.clear();
      return out;
    }
    size_t keep = 0;
    for (const std::string& s : stops_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > keep; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }
  std::string flush() { return std::exchange(pending_, {}); }
  bool hit() const { return hit_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool hit_ = false;
};

// One generate() call as the Python layer resolved it (retnet/_session.py: defaults, generation config).
struct GenSpec {
  std::optional<std::string> text;  // the prompt: text ...
  std::vector<int32_t> ids;         // ... or token ids (no BOS/EOS added)
  int64_t absorbed = 0;             // ids only: the session already holds ids[:absorbed]
  GenerateOptions opt;
  std::vector<std::string> stop_strings;
};

template <class T>
T get(const nb::dict& d, const char* key) {
  return nb::cast<T>(d[key]);
}

GenSpec parse_spec(const PyModel& pm, nb::object prompt, const nb::dict& d) {
  GenSpec g;
  if (nb::isinstance<nb::str>(prompt)) {
    g.text = nb::cast<std::string>(prompt);
  } else {
    IdArray a = nb::cast<IdArray>(prompt);
    auto s = ids_of(a);
    g.ids.assign(s.begin(), s.end());
  }
  g.absorbed = get<int64_t>(d, "absorbed");
  GenerateOptions& o = g.opt;
  o.max_tokens = get<int64_t>(d, "max_tokens");
  SamplerParams p;
  if (get<bool>(d, "use_generation_config")) p = pm.model->info().generation.apply_to(p);
  if (!d["temperature"].is_none()) p.temperature = get<float>(d, "temperature");
  if (!d["top_k"].is_none()) p.top_k = get<int32_t>(d, "top_k");
  if (!d["top_p"].is_none()) p.top_p = get<float>(d, "top_p");
  if (!d["min_p"].is_none()) p.min_p = get<float>(d, "min_p");
  if (!d["repeat_penalty"].is_none()) p.repeat_penalty = get<float>(d, "repeat_penalty");
  if (!d["repeat_last_n"].is_none()) p.repeat_last_n = get<int32_t>(d, "repeat_last_n");
  if (!d["frequency_penalty"].is_none()) p.frequency_penalty = get<float>(d, "frequency_penalty");
  if (!d["presence_penalty"].is_none()) p.presence_penalty = get<float>(d, "presence_penalty");
  if (!d["samplers"].is_none()) p.order = parse_sampler_order(get<std::string>(d, "samplers"));
  p.seed = get<uint64_t>(d, "seed");
  p.validate();
  o.sampler = p;
  o.add_special = get<bool>(d, "add_special");
  o.prefill.mode = parse_mode(get<std::string>(d, "mode"));
  o.prefill.chunk_size = get<int64_t>(d, "chunk_size");
  const bool ignore_eos = get<bool>(d, "ignore_eos");
  auto stop_ids = get<std::vector<int32_t>>(d, "stop_ids");
  if (stop_ids.empty()) {
    o.ignore_eos = ignore_eos;  // the library's default stop set: the model's EOS ids, else the tokenizer's
  } else {
    // Extra stop ids come on top of the end-of-sequence ids (which ignore_eos leaves out); the
    // library's stop_tokens replaces its default set, so the defaults are added here.
    o.stop_tokens = stop_ids;
    if (!ignore_eos) {
      const ModelInfo& info = pm.model->info();
      for (int64_t e : info.eos_token_ids) o.stop_tokens.push_back(int32_t(e));
      const int32_t tok_eos = get<int32_t>(d, "tokenizer_eos");
      if (info.eos_token_ids.empty() && tok_eos >= 0) o.stop_tokens.push_back(tok_eos);
    }
  }
  g.stop_strings = get<std::vector<std::string>>(d, "stop_strings");
  for (const std::string& s : g.stop_strings)
    if (s.empty()) throw Error("stop: an empty stop string would stop before the first token");
  return g;
}

// Runs the generation; `emit` receives each text piece (never empty), `keep_going` is asked after each
// token (false stops it). Returns the result with text = what was emitted.
nb::dict result_dict(const GenerateResult& r, const std::string& text, bool stop_hit, uint64_t seed) {
  nb::dict d;
  d["text"] = text;
  d["prompt_tokens"] = r.prompt_tokens;
  d["generated_tokens"] = r.generated_tokens;
  d["prompt_ms"] = r.prompt_ms;
  d["eval_ms"] = r.eval_ms;
  const char* why = r.stop == GenerateResult::Stop::Length          ? "length"
                    : r.stop == GenerateResult::Stop::EndOfSequence ? "eos"
                    : stop_hit                                      ? "stop"
                                                                    : "cancelled";
  d["stop"] = why;
  d["seed"] = seed;
  return d;
}

template <class Emit, class KeepGoing>
GenerateResult run_generate(Session& s, const Tokenizer& tok, const GenSpec& g, StopFilter& filter, Emit&& emit,
                            KeepGoing&& keep_going) {
  auto on_token = [&](const TokenEvent& ev) {
    std::string out = filter.push(ev.text);
    if (!out.empty()) emit(std::move(out));
    if (filter.hit()) return false;
    return keep_going();
  };
  GenerateResult r = g.text ? s.generate(tok, *g.text, g.opt, on_token)
                            : s.generate(tok, std::span<const int32_t>(g.ids), g.absorbed, g.opt, on_token);
  std::string rest = filter.flush();
  if (!rest.empty()) emit(std::move(rest));
  return r;
}

nb::dict generate(PySession& s, const PyModel& pm, const Tokenizer& tok, nb::object prompt, nb::dict spec) {
  BusyGuard busy(s);
  GenSpec g = parse_spec(pm, prompt, spec);
  StopFilter filter(g.stop_strings);
  InterruptCheck ctrl_c;
  g.opt.prefill.on_progress = [&](int64_t, int64_t) { return !ctrl_c.interrupted(); };
  std::string text;
  GenerateResult r;
  {
    nb::gil_scoped_release release;
    r = run_generate(
        s.session, tok, g, filter, [&](std::string piece) { text += piece; }, [&] { return !ctrl_c.interrupted(); });
  }
  ctrl_c.rethrow();
  return result_dict(r, text, filter.hit(), g.opt.sampler.seed);
}

class Stream {
 public:
  Stream(nb::object session_obj, PySession& s, Tokenizer tok, GenSpec g)
      : session_obj_(std::move(session_obj)),
        s_(s),
        busy_(std::in_place, s),
        tok_(std::move(tok)),
        spec_(std::move(g)),
        filter_(spec_.stop_strings) {
    // A close() (or Ctrl-C) also stops a long prompt's prefill, between blocks.
    spec_.opt.prefill.on_progress = [this](int64_t, int64_t) {
      std::lock_guard lk(mu_);
      return !closed_;
    };
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { close(); }

  // The next piece; nb::none() at the end (the Python iterator turns it into StopIteration).
  nb::object next() {
    InterruptCheck ctrl_c;
    std::optional<std::string> piece;
    {
      nb::gil_scoped_release release;
      std::unique_lock lk(mu_);
      if (!started_ && !closed_) {
        started_ = true;
        worker_ = std::thread([this] { work(); });
      }
      demand_ = true;
      cv_.notify_all();
      // Wake every 100 ms for Ctrl-C (main thread only), e.g. during a long prompt's prefill.
      while (
          !cv_.wait_for(lk, std::chrono::milliseconds(100), [&] { return piece_.has_value() || done_ || closed_; })) {
        lk.unlock();
        const bool stop = ctrl_c.interrupted();
        lk.lock();
        if (stop) {
          closed_ = true;
          cv_.notify_all();
        }
      }
      if (piece_) piece = std::exchange(piece_, std::nullopt);
    }
    if (piece) return nb::str(piece->data(), piece->size());
    finish();
    ctrl_c.rethrow();
    return nb::none();
  }

  // Stops the generation (the token callback returns false) and waits for the worker; idempotent.
  void close() {
    {
      nb::gil_scoped_release release;
      {
        std::lock_guard lk(mu_);
        closed_ = true;
        cv_.notify_all();
      }
      if (worker_.joinable()) worker_.join();
    }
    busy_.reset();
  }

  // The result once the generation ended (None before); raises what the generation raised.
  nb::object result() {
    std::lock_guard lk(mu_);
    if (!done_) return nb::none();
    if (!result_) return nb::none();
    return result_dict(*result_, text_, filter_.hit(), spec_.opt.sampler.seed);
  }

 private:
  void work() {
    try {
      GenerateResult r = run_generate(
          s_.session, tok_, spec_, filter_,
          [&](std::string piece) {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return !piece_ || closed_; });  // never overwrite a piece not taken yet
            if (closed_) return;
            text_ += piece;
            piece_ = std::move(piece);
            demand_ = false;
            cv_.notify_all();
          },
          [&] {
            // Lockstep: continue only when the consumer asks for the next piece (or stop when it closed).
            std::unique_lock lk(mu_);
            if (!piece_ && demand_) return !closed_;  // this token gave no text: keep going for the demand
            cv_.wait(lk, [&] { return (demand_ && !piece_) || closed_; });
            return !closed_;
          });
      std::lock_guard lk(mu_);
      result_ = r;
    } catch (...) {
      std::lock_guard lk(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard lk(mu_);
    done_ = true;
    cv_.notify_all();
  }

  void finish() {
    close();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  nb::object session_obj_;  // keeps the Python Session (and so s_) alive while the worker runs
  PySession& s_;
  std::optional<BusyGuard> busy_;
  Tokenizer tok_;
  GenSpec spec_;
  StopFilter filter_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false, demand_ = false, done_ = false, closed_ = false;
  std::optional<std::string> piece_;
  std::string text_;
  std::optional<GenerateResult> result_;
  std::exception_ptr error_;
};

}  // namespace

void bind_generate(nb::module_& m) {
  m.def("generate", &generate, nb::arg("session"), nb::arg("model"), nb::arg("tokenizer"), nb::arg("prompt"),
        nb::arg("spec"));
  nb::class_<Stream>(m, "Stream")
      .def("next", &Stream::next)
      .def("close", &Stream::close)
      .def("result", &Stream::result);
  m.def(
      "stream",
      [](nb::object session_obj, const PyModel& pm, const Tokenizer& tok, nb::object prompt, nb::dict spec) {
        PySession& s = nb::cast<PySession&>(session_obj);
        GenSpec g = parse_spec(pm, prompt, spec);
        return new Stream(session_obj, s, tok, std::move(g));
      },
      nb::arg("session"), nb::arg("model"), nb::arg("tokenizer"), nb::arg("prompt"), nb::arg("spec"));
}

}  // namespace retnet::py
