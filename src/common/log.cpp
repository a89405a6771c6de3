// The public logging switches, implemented over spdlog (which stays private to the library).
#include "retnet/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

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

class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(std::function<void(LogLevel, std::string_view)> f) : f_(std::move(f)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    f_(from_spd(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::function<void(LogLevel, std::string_view)> f_;
};

std::mutex g_mu;

// The library logs through spdlog's default logger; make it say "warning: ..." on stderr.
struct Init {
  Init() {
    spdlog::set_pattern("%^%l%$: %v");
    spdlog::set_level(spdlog::level::warn);
  }
} g_init;

}  // namespace

void set_log_level(LogLevel level) {
  std::lock_guard<std::mutex> lk(g_mu);
  spdlog::set_level(to_spd(level));
}

LogLevel log_level() { return from_spd(spdlog::get_level()); }

void set_log_callback(std::function<void(LogLevel, std::string_view)> sink) {
  std::lock_guard<std::mutex> lk(g_mu);
  const auto level = spdlog::get_level();
  std::shared_ptr<spdlog::logger> logger;
  if (sink) logger = std::make_shared<spdlog::logger>("retnet", std::make_shared<CallbackSink>(std::move(sink)));
  else logger = std::make_shared<spdlog::logger>("retnet", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
}

}  // namespace retnet
