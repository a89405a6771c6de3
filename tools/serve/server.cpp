// The HTTP side of `retnet serve` (serve.hpp): routes, authentication, limits, streaming, shutdown.
// HTTP threads only parse, queue and stream; the scheduler thread (scheduler.hpp) owns the model.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "api.hpp"
#include "disk_cache.hpp"
#include "logprobs.hpp"
#include "peer.hpp"
#include "scheduler.hpp"
#include "serve.hpp"
#include "state_blob.hpp"
#include "web_ui.hpp"

namespace retnet::serve {

// Responses keep their keys in insertion order (OpenAI's order; top_logprobs most likely first).
using json = nlohmann::ordered_json;

namespace {

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }

// Compares in time independent of where the strings differ (the length may leak; the key may not).
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_json(e)), "application/json");
}

// What a state blob of this server may hold: a conversation no longer than a prompt and a reply.
StateBlobLimits state_limits(const ServeOptions& opt, const ModelInfo& info) {
  StateBlobLimits l;
  l.max_tokens = opt.max_prompt_tokens + opt.max_tokens;
  l.vocab_size = info.vocab_size;
  return l;
}

std::unique_ptr<DiskCache> make_disk_cache(const ServeOptions& opt, const ModelInfo& info) {
  if (opt.cache_dir.empty()) return nullptr;
  DiskCache::Options d;
  d.dir = opt.cache_dir;
  d.budget_bytes = uint64_t(opt.cache_disk_mib) << 20;
  d.fingerprint = info.fingerprint;
  d.limits = state_limits(opt, info);
  if (!opt.quiet) d.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  return std::make_unique<DiskCache>(std::move(d));
}

class Server {
 public:
  Server(const ServeOptions& opt, std::shared_ptr<const Model> model, Tokenizer tok, ChatTemplate chat)
      : opt_(opt),
        model_(std::move(model)),
        tok_(std::move(tok)),
        disk_(make_disk_cache(opt, model_->info())),
        chat_(std::move(chat)),
        sched_(model_, tok_,
               SchedulerOptions{opt.parallel, size_t(opt.queue_limit), uint64_t(opt.cache_ram_mib) << 20, disk_.get()}),
        validator_(model_) {
    limits_ = state_limits(opt, model_->info());
    snapshot_bytes_ = validator_.save_state().size();
    max_state_body_ = state_blob_bytes(limits_.max_tokens, limits_.vocab_size, snapshot_bytes_);
    ctx_.tok = &tok_;
    ctx_.info = &model_->info();
    ctx_.chat_template = &chat_;
    ctx_.model_name = opt.model_name;
    ctx_.limits.max_prompt_tokens = opt.max_prompt_tokens;
    ctx_.limits.max_tokens = opt.max_tokens;
    ctx_.limits.max_n = opt.max_n;
    created_ = int64_t(std::time(nullptr));
    routes();
  }

  int bind() {
    if (opt_.port == 0) return http_.bind_to_any_port(opt_.host);
    return http_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1;
  }
  bool listen() { return http_.listen_after_bind(); }
  void stop() {
    stopping_ = true;
    sched_.shutdown();  // running and queued jobs fail with 503: their HTTP threads answer and return
    http_.stop();
  }

 private:
  void routes() {
    const int n_threads = opt_.max_connections;
    http_.new_task_queue = [n_threads] { return new httplib::ThreadPool(size_t(n_threads)); };
    // State imports are as large as a state (512 KiB for the bundled model, far more for large ones);
    // every other route keeps --max-body (too_large()).
    http_.set_payload_max_length(size_t(std::max<uint64_t>(uint64_t(opt_.max_body_bytes), max_state_body_)));
    http_.set_read_timeout(opt_.timeout_s, 0);
    http_.set_write_timeout(opt_.timeout_s, 0);
    http_.set_keep_alive_timeout(2);  // idle connections go, so that a stop is prompt
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (opt_.verbose) std::fprintf(stderr, "serve: %s %s\n", req.method.c_str(), req.path.c_str());
      if (opt_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      // The chat page needs no key: a browser cannot send an Authorization header when it navigates to
      // a URL, and the page is static, the same for everyone, with no secret in it. The API calls it
      // makes carry the key (asked for after their 401) and are checked like any other.
      if (opt_.web_ui && req.path == "/") return httplib::Server::HandlerResponse::Unhandled;
      const std::string want = "Bearer " + opt_.api_key;
      if (constant_time_equal(req.get_header_value("Authorization"), want))
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, error_for_status(401));
      return httplib::Server::HandlerResponse::Handled;
    });
    // Statuses httplib sets itself (404 unknown route, 413, 400 malformed HTTP) get OpenAI's JSON.
    http_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, error_for_status(res.status));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      ApiError e;
      e.status = 500;
      e.type = "server_error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& x) {
        e.message = x.what();
      } catch (...) {
        e.message = "unknown error";
      }
      send_error(res, e);
    });

    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const SchedulerStats s = sched_.stats();
      res.status = stopping_ ? 503 : 200;
      res.set_content(dump(json{{"status", stopping_ ? "shutting down" : "ok"},
                                {"slots_total", opt_.parallel},
                                {"slots_busy", s.active},
                                {"queued", s.queued},
                                {"cache",
                                 {{"bytes", s.cache_bytes},
                                  {"entries", s.cache_entries},
                                  {"hits", s.cache_hits},
                                  {"hit_tokens", s.cache_hit_tokens}}}}),
                      "application/json");
    });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    // Every answered request, by route and status, for /metrics (routes outside the API count as "other",
    // so that hostile paths cannot grow the table).
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      static const char* const known[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                                          "/tokenize",       "/detokenize",          "/metrics",   "/"};
      std::string route = "other";
      for (const char* k : known)
        if (req.path == k) route = k;
      if (req.path.rfind("/v1/models/", 0) == 0) route = "/v1/models/{id}";
      if (req.path.rfind("/v1/states/", 0) == 0) route = "/v1/states/{id}";
      std::lock_guard lk(requests_mu_);
      requests_[{route, res.status}]++;
    });
    if (opt_.web_ui)
      http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_header("Content-Security-Policy", chat_page_csp());
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("Referrer-Policy", "no-referrer");
        res.set_header("Cache-Control", "no-cache");  // revalidated, so that a new build's page is seen
        const std::string_view page = chat_page_html();
        res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
      });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump(json{{"object", "list"}, {"data", json::array({model_json()})}}), "application/json");
    });
    http_.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.matches[1] != opt_.model_name) {
        ApiError e = error_for_status(404);
        e.code = "model_not_found";
        e.message = "The model '" + std::string(req.matches[1]) + "' does not exist";
        return send_error(res, e);
      }
      res.set_content(dump(model_json()), "application/json");
    });
    http_.Post("/v1/completions",
               [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, false); });
    http_.Post("/v1/chat/completions",
               [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, true); });
    http_.Get(R"(/v1/states/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) { get_state(req, res); });
    http_.Put(R"(/v1/states/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) { put_state(req, res); });
    http_.Delete(R"(/v1/states/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) { delete_state(req, res); });
    http_.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
      if (too_large(req, res)) return;
      try {
        const json b = parse_body(req.body, ctx_.limits.max_json_depth);
        auto it = b.find("content");
        if (it == b.end() || !it->is_string())
          throw ApiError{400, "content: expected a string", "invalid_request_error", "content", ""};
        bool add_special = false;
        if (auto a = b.find("add_special"); a != b.end() && !a->is_null()) {
          if (!a->is_boolean())
            throw ApiError{400, "add_special: expected a boolean", "invalid_request_error", "add_special", ""};
          add_special = a->get<bool>();
        }
        res.set_content(dump(json{{"tokens", tok_.encode(it->get<std::string>(), add_special)}}), "application/json");
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    });
    http_.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
      if (too_large(req, res)) return;
      try {
        const json b = parse_body(req.body, ctx_.limits.max_json_depth);
        auto it = b.find("tokens");
        if (it == b.end() || !it->is_array())
          throw ApiError{400, "tokens: expected an array of token ids", "invalid_request_error", "tokens", ""};
        std::vector<int32_t> ids;
        for (const auto& v : *it) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= ctx_.info->vocab_size)
            throw ApiError{400, "tokens: expected token ids in [0, " + std::to_string(ctx_.info->vocab_size) + ")",
                           "invalid_request_error", "tokens", ""};
          ids.push_back(v.get<int32_t>());
        }
        res.set_content(dump(json{{"content", tok_.decode(ids)}}), "application/json");
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    });
  }

  json model_json() const {
    const ModelInfo& i = model_->info();
    return json{{"id", opt_.model_name},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "retnet"},
                {"meta",
                 {{"family", i.family},
                  {"n_params", i.n_params},
                  {"vocab_size", i.vocab_size},
                  {"state_bytes", i.state_bytes},
                  {"state_dtype", i.state_dtype},
                  {"device", i.device},
                  {"chat_template", chat_.origin()}}}};
  }

  // The JSON of one choice's delta or whole result.
  json choice_json(bool chat, bool stream, int64_t index, const std::string& text, const json& finish,
                   json logprobs = nullptr) const {
    json c{{"index", index}};
    if (!chat) c["text"] = text;
    else if (stream) c["delta"] = text.empty() && !finish.is_null() ? json::object() : json{{"content", text}};
    else c["message"] = {{"role", "assistant"}, {"content", text}};
    c["logprobs"] = std::move(logprobs);
    c["finish_reason"] = finish;
    return c;
  }

  // Choice i's usage into a request's, in whatever order the choices end: every choice's completion;
  // a prompt's tokens once (its first choice's, of n); choice 0's state.
  static void add_usage(JobUsage& total, const JobUsage& u, size_t i, size_t n) {
    total.completion_tokens += u.completion_tokens;
    if (i % n == 0) {
      total.prompt_tokens += u.prompt_tokens;
      total.cached_tokens += u.cached_tokens;
    }
    if (i == 0) {
      total.state_id = u.state_id;
      total.state_tokens = u.state_tokens;
    }
  }

  static json usage_json(const JobUsage& u) {
    return json{{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
  }

  // Bodies past --max-body on the routes that are not state imports (httplib's own limit is the larger
  // of the two).
  bool too_large(const httplib::Request& req, httplib::Response& res) const {
    if (req.body.size() <= size_t(opt_.max_body_bytes)) return false;
    send_error(res, error_for_status(413));
    return true;
  }

  // ---- states: GET/PUT/DELETE /v1/states/{id} (README: "Conversation states")
  static ApiError state_error(int status, const std::string& message, const std::string& code) {
    ApiError e = error_for_status(status);
    e.message = message;
    e.code = code;
    if (status == 404) e.type = "not_found_error";
    return e;
  }
  // The id of the path, or an error sent.
  std::optional<std::string> state_path_id(const httplib::Request& req, httplib::Response& res) const {
    const std::string id = req.matches[1];
    if (is_state_id(id)) return id;
    send_error(res, state_error(400, "state id: expected 32 lowercase hex digits, got '" + id.substr(0, 64) + "'",
                                "invalid_state_id"));
    return std::nullopt;
  }

  void get_state(const httplib::Request& req, httplib::Response& res) {
    const auto id = state_path_id(req, res);
    if (!id) return;
    std::optional<std::vector<uint8_t>> blob;
    int64_t tokens = 0;
    if (auto f = sched_.cache().find(*id)) {
      blob = encode_state_blob(model_->info().fingerprint, f->tokens, f->entry->logits, f->entry->state);
      tokens = f->entry->tokens;
    } else if (disk_) {
      blob = disk_->read(*id);
      if (blob) tokens = int64_t(decode_state_blob(*blob, limits_).tokens.size());
    }
    if (!blob)
      return send_error(res, state_error(404,
                                         "no state " + *id +
                                             " on this server (never stored here, deleted, or evicted from the "
                                             "cache" +
                                             (disk_ ? " and --cache-dir)" : "; --cache-dir keeps more)"),
                                         "state_not_found"));
    res.set_header("X-Retnet-State-Tokens", std::to_string(tokens));
    res.set_content(std::string(blob->begin(), blob->end()), "application/octet-stream");
  }

  void put_state(const httplib::Request& req, httplib::Response& res) {
    const auto id = state_path_id(req, res);
    if (!id) return;
    if (!sched_.cache().enabled() && !disk_)
      return send_error(
          res, state_error(409, "the prefix cache is off (--cache-ram 0 and no --cache-dir): nowhere to keep a state",
                           "cache_disabled"));
    if (req.body.size() > max_state_body_)
      return send_error(res,
                        state_error(413,
                                    "a state of this server's model is at most " + std::to_string(max_state_body_) +
                                        " bytes, got " + std::to_string(req.body.size()),
                                    "request_too_large"));
    const auto body = std::span(reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size());
    StateBlob b;
    try {
      b = decode_state_blob(body, limits_);
    } catch (const Error& e) {
      return send_error(res, state_error(400, e.what(), "invalid_state"));
    }
    const uint64_t fp = model_->info().fingerprint;
    if (b.fingerprint != fp) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "the state is of another model (fp_%016llx; this server runs fp_%016llx)",
                    (unsigned long long)b.fingerprint, (unsigned long long)fp);
      return send_error(res, state_error(409, buf, "model_mismatch"));
    }
    const std::string actual = state_id(fp, b.tokens);
    if (actual != *id)
      return send_error(res, state_error(400, "the body is the state " + actual + ", not " + *id, "state_id_mismatch"));
    // The library's own checks of the snapshot (checksum, shape, finite values) and of its token digest.
    try {
      std::lock_guard lk(validator_mu_);
      validator_.load_state(b.state);
      if (!validator_.history_matches(b.tokens))
        throw Error("state snapshot: its token digest does not match the tokens");
    } catch (const Error& e) {
      return send_error(res, state_error(400, e.what(), "invalid_state"));
    }
    const int64_t n = int64_t(b.tokens.size());
    const bool has_logits = !b.logits.empty();
    bool stored = false;
    if (disk_) {
      try {
        stored = disk_->store(*id, body, n, has_logits);
      } catch (const Error& e) {
        ApiError err = error_for_status(500);
        err.type = "server_error";
        err.message = e.what();
        return send_error(res, err);
      }
    }
    stored = sched_.cache().put(b.tokens, std::move(b.state), std::move(b.logits)) != nullptr || stored;
    if (!stored)
      return send_error(res,
                        state_error(413, "the state is larger than this server's cache budgets", "state_too_large"));
    res.status = 201;
    res.set_content(
        dump(json{{"id", *id}, {"object", "state"}, {"tokens", n}, {"logits", has_logits}, {"bytes", body.size()}}),
        "application/json");
  }

  void delete_state(const httplib::Request& req, httplib::Response& res) {
    const auto id = state_path_id(req, res);
    if (!id) return;
    const bool ram = sched_.cache().erase(*id);
    const bool disk = disk_ && disk_->erase(*id);
    if (!ram && !disk)
      return send_error(res, state_error(404, "no state " + *id + " on this server", "state_not_found"));
    res.set_content(dump(json{{"id", *id}, {"object", "state"}, {"deleted", true}}), "application/json");
  }

  static json state_json(const JobUsage& u) { return json{{"state_id", u.state_id}, {"state_tokens", u.state_tokens}}; }

  void completion(const httplib::Request& req, httplib::Response& res, bool chat) {
    if (too_large(req, res)) return;
    CompletionRequest r;
    try {
      r = parse_completion(parse_body(req.body, ctx_.limits.max_json_depth), chat, ctx_);
    } catch (const ApiError& e) {
      return send_error(res, e);
    }
    std::vector<std::shared_ptr<Job>> jobs;
    for (size_t q = 0; q < r.prompts.size(); ++q)
      for (int64_t i = 0; i < r.n; ++i) {
        JobParams p = r.job;
        p.prompt = r.prompts[q];
        p.echo_text = r.echo_texts[q];
        p.sampler.seed += uint64_t(i);  // choice i of each prompt samples with seed + i
        jobs.push_back(std::make_shared<Job>(std::move(p)));
      }
    switch (sched_.submit(jobs)) {
      case Scheduler::Submit::Ok:
        break;
      case Scheduler::Submit::QueueFull:
        return send_error(res, error_for_status(503));
      case Scheduler::Submit::ShuttingDown: {
        ApiError e = error_for_status(503);
        e.message = "the server is shutting down";
        return send_error(res, e);
      }
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++);
    const json base{{"id", id},
                    {"object", chat ? (r.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                    {"created", int64_t(std::time(nullptr))},
                    {"model", opt_.model_name},
                    {"system_fingerprint", fingerprint()}};
    if (r.stream) return stream(res, r, jobs, base);

    std::vector<std::string> texts(jobs.size());
    JobUsage total;
    json choices = json::array();
    // A client that goes away while it waits cancels its jobs: their slots are free at the next step.
    const int fd = find_connection_socket(req.local_port, req.remote_addr, req.remote_port);
    auto checked = std::chrono::steady_clock::now();
    for (size_t i = 0; i < jobs.size(); ++i) {
      Job::Update u;
      std::vector<LogprobEntry> entries;
      do {
        u = jobs[i]->next(std::chrono::milliseconds(100), /*whole=*/true);
        texts[i] += u.text;
        for (auto& e : u.logprobs) entries.push_back(std::move(e));
        const auto now = std::chrono::steady_clock::now();
        if (!u.finished && now - checked >= std::chrono::milliseconds(100)) {
          checked = now;
          if (peer_closed(fd)) {
            for (auto& j : jobs) j->cancelled = true;
            ApiError e = error_for_status(499);  // nginx's "client closed request", for the request log
            e.message = "the client closed the connection";
            return send_error(res, e);
          }
        }
      } while (!u.finished);
      if (u.error_status) {
        for (auto& j : jobs) j->cancelled = true;
        ApiError e = error_for_status(u.error_status);
        e.message = u.error;
        return send_error(res, e);
      }
      add_usage(total, u.usage, i, size_t(r.n));
      json lp = nullptr;
      if (r.job.logprobs >= 0)
        lp = chat ? chat_logprobs_json(entries) : completion_logprobs_json(entries, texts[i], 0, 0);
      choices.push_back(choice_json(chat, false, int64_t(i), texts[i], u.finish_reason, std::move(lp)));
      if (!u.usage.state_id.empty()) choices.back()["retnet"] = state_json(u.usage);
    }
    json out = base;
    out["choices"] = choices;
    out["usage"] = usage_json(total);
    // The state after choice 0's last token (each choice names its own): GET /v1/states/{id}.
    if (!total.state_id.empty()) {
      out["retnet"] = state_json(total);
      res.set_header("X-Retnet-State-Id", total.state_id);
    }
    res.set_content(dump(out), "application/json");
  }

  // Server-sent events: one chunk per piece of text, a final chunk per choice with its finish
  // reason, the usage chunk when asked, then "data: [DONE]". A client that goes away cancels its jobs.
  void stream(httplib::Response& res, const CompletionRequest& r, std::vector<std::shared_ptr<Job>> jobs,
              const json& base) {
    struct State {
      std::vector<std::shared_ptr<Job>> jobs;
      std::vector<bool> done;
      std::vector<size_t> bytes_sent, chars_sent;  // per choice: its text so far (text_offset's base)
      std::vector<bool> echo_pending;              // per choice: its prompt (echo) not sent yet
      // per choice: its echo's text and entries (one per prompt token with logprobs), which the
      // scheduler sends before anything generated
      std::vector<size_t> echo_bytes, echo_entries;
      size_t n = 1;  // choices per prompt
      JobUsage usage;
      bool started = false, ended = false;
      std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
    };
    auto st = std::make_shared<State>();
    st->jobs = std::move(jobs);
    st->done.assign(st->jobs.size(), false);
    st->bytes_sent.assign(st->jobs.size(), 0);
    st->chars_sent.assign(st->jobs.size(), 0);
    st->echo_pending.assign(st->jobs.size(), r.job.echo);
    st->n = size_t(r.n);
    const bool chat = r.chat, include_usage = r.include_usage, want_logprobs = r.job.logprobs >= 0;
    for (const auto& j : st->jobs) {
      st->echo_bytes.push_back(j->params.echo_text.size());
      st->echo_entries.push_back(want_logprobs ? j->params.prompt.size() : 0);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st, chat, include_usage, want_logprobs, base](size_t, httplib::DataSink& sink) {
          const auto event = [&](const json& j) {
            const std::string s = "data: " + dump(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          const auto chunk = [&](size_t i, const std::string& text, const json& finish, json logprobs = nullptr,
                                 const JobUsage* u = nullptr) {
            json j = base;
            j["choices"] = json::array({choice_json(chat, true, int64_t(i), text, finish, std::move(logprobs))});
            if (u && !u->state_id.empty()) j["choices"][0]["retnet"] = state_json(*u);  // on the choice's last chunk
            return event(j);
          };
          // A chunk's logprobs are those of the tokens whose text begins in it.
          const auto chunk_logprobs = [&](size_t i, const Job::Update& u) -> json {
            if (!want_logprobs) return nullptr;
            json lp = chat ? chat_logprobs_json(u.logprobs)
                           : completion_logprobs_json(u.logprobs, u.text, st->bytes_sent[i], st->chars_sent[i]);
            st->bytes_sent[i] += u.text.size();
            st->chars_sent[i] += utf8_char_index(u.text, u.text.size());
            return lp;
          };
          if (!st->started) {
            st->started = true;
            if (chat)
              for (size_t i = 0; i < st->jobs.size(); ++i) {
                json j = base;
                j["choices"] = json::array({json{{"index", i},
                                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                                 {"logprobs", nullptr},
                                                 {"finish_reason", nullptr}}});
                if (!event(j)) return false;
              }
          }
          bool waited = false;
          for (size_t i = 0; i < st->jobs.size(); ++i) {
            if (st->done[i]) continue;
            // Block on the first unfinished choice; look at the others without waiting.
            Job::Update u = st->jobs[i]->next(std::chrono::milliseconds(waited ? 0 : 100));
            waited = true;
            if (st->echo_pending[i] && (!u.text.empty() || !u.logprobs.empty())) {
              // The first chunk is the prompt's alone; tokens generated by the time it is read follow in
              // the next one.
              st->echo_pending[i] = false;
              Job::Update e;
              e.text = u.text.substr(0, st->echo_bytes[i]);
              u.text.erase(0, e.text.size());
              const auto n = std::ptrdiff_t(std::min(st->echo_entries[i], u.logprobs.size()));
              e.logprobs.assign(std::make_move_iterator(u.logprobs.begin()),
                                std::make_move_iterator(u.logprobs.begin() + n));
              u.logprobs.erase(u.logprobs.begin(), u.logprobs.begin() + n);
              if ((!e.text.empty() || !e.logprobs.empty()) && !chunk(i, e.text, nullptr, chunk_logprobs(i, e)))
                return false;
              st->last_write = std::chrono::steady_clock::now();
            }
            const bool news = !u.text.empty() || !u.logprobs.empty();
            if (news && !chunk(i, u.text, nullptr, chunk_logprobs(i, u))) return false;
            if (news) st->last_write = std::chrono::steady_clock::now();
            if (!u.finished) continue;
            st->done[i] = true;
            if (u.error_status) {
              ApiError e = error_for_status(u.error_status);
              e.message = u.error;
              event(error_json(e));
              const std::string d = "data: [DONE]\n\n";
              sink.write(d.data(), d.size());
              for (auto& j : st->jobs) j->cancelled = true;
              sink.done();
              return true;
            }
            if (!chunk(i, "", u.finish_reason, nullptr, &u.usage)) return false;
            add_usage(st->usage, u.usage, i, st->n);
          }
          // Nothing sent for a second (queued, or a long prefill): an SSE comment, which clients ignore,
          // so that a client that went away is noticed (its write fails) and its job cancelled.
          if (std::chrono::steady_clock::now() - st->last_write > std::chrono::seconds(1)) {
            static const std::string ping = ": keep-alive\n\n";
            if (!sink.write(ping.data(), ping.size())) return false;
            st->last_write = std::chrono::steady_clock::now();
          }
          if (std::all_of(st->done.begin(), st->done.end(), [](bool d) { return d; })) {
            if (include_usage) {
              json j = base;
              j["choices"] = json::array();
              j["usage"] = usage_json(st->usage);
              if (!st->usage.state_id.empty()) j["retnet"] = state_json(st->usage);
              if (!event(j)) return false;
            }
            const std::string d = "data: [DONE]\n\n";
            if (!sink.write(d.data(), d.size())) return false;
            sink.done();
          }
          return true;
        },
        [st](bool) {
          // However the response ended, nothing more is read from these jobs.
          for (auto& j : st->jobs) j->cancelled = true;
        });
  }

  // Prometheus' text format (version 0.0.4).
  std::string metrics() const {
    const SchedulerStats st = sched_.stats();
    std::string out;
    const auto metric = [&](const char* name, const char* type, const char* help, double v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      out +=
          std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + buf + "\n";
    };
    const auto histogram = [&](const char* name, const char* help, const Histogram& h) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
      uint64_t cum = 0;
      char buf[160];
      for (size_t i = 0; i <= h.bounds.size(); ++i) {
        cum += h.counts[i];
        if (i < h.bounds.size())
          std::snprintf(buf, sizeof buf, "%s_bucket{le=\"%g\"} %llu\n", name, h.bounds[i], (unsigned long long)cum);
        else std::snprintf(buf, sizeof buf, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        out += buf;
      }
      std::snprintf(buf, sizeof buf, "%s_sum %.17g\n%s_count %llu\n", name, h.sum, name, (unsigned long long)h.count);
      out += buf;
    };
    out +=
        "# HELP retnet_requests_total HTTP requests answered, by route and status.\n# TYPE retnet_requests_total counter\n";
    {
      std::lock_guard lk(requests_mu_);
      for (const auto& [k, n] : requests_)
        out += "retnet_requests_total{route=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
               std::to_string(n) + "\n";
    }
    metric("retnet_prompt_tokens_total", "counter", "Prompt tokens of finished generations.", double(st.prompt_tokens));
    metric("retnet_completion_tokens_total", "counter", "Tokens generated by finished generations.",
           double(st.completion_tokens));
    metric("retnet_generations_total", "counter", "Generations (choices) finished.", double(st.jobs_done));
    metric("retnet_generations_cancelled_total", "counter",
           "Generations dropped unfinished because their client went away (a stream closed, Stop in the chat page).",
           double(st.jobs_cancelled));
    metric("retnet_prefilled_tokens_total", "counter", "Prompt tokens actually prefilled (not resumed from the cache).",
           double(st.prefilled_tokens));
    metric("retnet_decode_steps_total", "counter", "Batched decode steps.", double(st.steps));
    metric("retnet_decode_tokens_total", "counter",
           "Tokens decoded by those steps (over steps: the mean batch occupancy).", double(st.decoded_tokens));
    metric("retnet_queue_depth", "gauge", "Generations waiting for a slot.", double(st.queued));
    metric("retnet_slots_busy", "gauge", "Slots running a generation.", double(st.active));
    metric("retnet_slots_total", "gauge", "Slots (--parallel).", double(opt_.parallel));
    metric("retnet_cache_hits_total", "counter", "Prompts resumed from the prefix-state cache.", double(st.cache_hits));
    metric("retnet_cache_hit_tokens_total", "counter", "Prompt tokens those resumptions skipped.",
           double(st.cache_hit_tokens));
    metric("retnet_cache_bytes", "gauge", "Bytes held by the prefix-state cache.", double(st.cache_bytes));
    metric("retnet_cache_entries", "gauge", "Snapshots in the prefix-state cache.", double(st.cache_entries));
    metric("retnet_disk_cache_bytes", "gauge", "Bytes of this model's states in --cache-dir.",
           double(disk_ ? disk_->bytes() : 0));
    metric("retnet_disk_cache_files", "gauge", "This model's states in --cache-dir.",
           double(disk_ ? disk_->files() : 0));
    histogram("retnet_time_to_first_token_seconds", "From a generation's arrival to its first token.", st.ttft);
    histogram("retnet_inter_token_latency_seconds", "Between consecutive tokens of one generation.", st.itl);
    return out;
  }

  std::string fingerprint() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "fp_%016llx", (unsigned long long)model_->info().fingerprint);
    return buf;
  }

  const ServeOptions& opt_;
  std::shared_ptr<const Model> model_;
  Tokenizer tok_;
  std::unique_ptr<DiskCache> disk_;  // before sched_, which uses it
  ChatTemplate chat_;
  Scheduler sched_;
  std::mutex validator_mu_;
  Session validator_;  // checks imported snapshots with the library's own load_state
  StateBlobLimits limits_;
  uint64_t snapshot_bytes_ = 0, max_state_body_ = 0;
  ApiContext ctx_;
  int64_t created_ = 0;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stopping_{false};
  mutable std::mutex requests_mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) -> count
  httplib::Server http_;
};

}  // namespace

bool serve_available() { return true; }

int run_serve(const ServeOptions& opt_in) {
  ServeOptions opt = opt_in;
  if (opt.model_name.empty()) opt.model_name = std::filesystem::path(opt.model_dir).filename().string();
  if (opt.model_name.empty()) opt.model_name = std::filesystem::path(opt.model_dir).parent_path().filename().string();
  // The template first: a broken one is refused before the (slower) model load.
  ChatTemplate chat = ChatTemplate::load(opt.model_dir, opt.chat_template);
  auto model = Model::load(opt.model_dir, opt.load);
  Tokenizer tok = Tokenizer::load(opt.model_dir);
  const std::string chat_origin = chat.origin();
  Server server(opt, model, std::move(tok), std::move(chat));
  const int port = server.bind();
  if (port < 0) throw Error("serve: cannot listen on " + opt.host + ":" + std::to_string(opt.port));

  // A write to a client that went away must be an error return, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && !g_signal) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_signal && !opt.quiet)
      std::fprintf(stderr, "retnet serve: %s: shutting down\n", g_signal == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  const ModelInfo& info = model->info();
  if (!opt.quiet)
    std::fprintf(
        stderr, "model: %s (%s, %.2fM params, %s), %d slots, prefix cache %lld MiB%s\n", opt.model_dir.c_str(),
        info.family.c_str(), double(info.n_params) / 1e6, info.device.c_str(), opt.parallel,
        (long long)opt.cache_ram_mib,
        opt.cache_dir.empty() ? "" : (" + " + std::to_string(opt.cache_disk_mib) + " MiB in " + opt.cache_dir).c_str());
  if (!opt.quiet) std::fprintf(stderr, "chat template: %s\n", chat_origin.c_str());
  // Always printed (also with --quiet): scripts and tests read the port from this line.
  std::fprintf(stderr, "retnet serve: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::fflush(stderr);
  const bool ok = server.listen();
  done = true;
  watcher.join();
  if (!opt.quiet) std::fprintf(stderr, "retnet serve: stopped\n");
  return ok || g_signal ? 0 : 1;
}

}  // namespace retnet::serve
