// The public logging switches, implemented over a private spdlog logger (common/logger.hpp).
#include "retnet/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>
#include <mutex>

#include "common/logger.hpp"

namespace retnet {

namespace {

spdlog::level::level_enum to_spd(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    case LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::warn;
}

LogLevel from_spd(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LogLevel::Debug;
    case spdlog::level::info: return LogLevel::Info;
    case spdlog::level::warn: return LogLevel::Warn;
    case spdlog::level::err:
    case spdlog::level::critical: return LogLevel::Error;
    default: return LogLevel::Off;
  }
}

// The logger's one sink: stderr ("warning: ...", coloured on a terminal) or the user's callback.
// Switching takes the sink's own lock, the one every message is written under, so a message in
// flight on another thread goes wholly to the old or the new destination.
class SwitchSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SwitchSink() : stderr_(std::make_shared<spdlog::sinks::stderr_color_sink_st>()) { stderr_->set_pattern("%^%l%$: %v"); }
  void route(std::function<void(LogLevel, std::string_view)> f) {
    std::lock_guard<std::mutex> lk(mutex_);
    f_ = std::move(f);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (f_) f_(from_spd(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
    else stderr_->log(msg);
  }
  void flush_() override {
    if (!f_) stderr_->flush();
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> stderr_;
  std::function<void(LogLevel, std::string_view)> f_;
};

struct LibLogger {
  std::shared_ptr<SwitchSink> sink = std::make_shared<SwitchSink>();
  spdlog::logger logger{"retnet", sink};
  LibLogger() { logger.set_level(spdlog::level::warn); }
};

// Built on first use, so logging from other translation units' static initialisers is safe.
LibLogger& lib() {
  static LibLogger l;
  return l;
}

}  // namespace

spdlog::logger& lib_log() { return lib().logger; }

void set_log_level(LogLevel level) { lib().logger.set_level(to_spd(level)); }  // atomic in spdlog

LogLevel log_level() { return from_spd(lib().logger.level()); }

void set_log_callback(std::function<void(LogLevel, std::string_view)> sink) { lib().sink->route(std::move(sink)); }

}  // namespace retnet
