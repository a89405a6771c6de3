// Library logging: where warnings and diagnostics go (by default stderr, level Warn).
#pragma once
#include <functional>
#include <string_view>

#include "retnet/export.h"

namespace retnet {

enum class LogLevel { Debug, Info, Warn, Error, Off };

// Messages below `level` are dropped. Thread-safe.
RETNET_API void set_log_level(LogLevel level);
RETNET_API LogLevel log_level();  // the current level; thread-safe
// Routes every message to `sink` instead of stderr (an empty function restores stderr). The library
// keeps a copy of the sink until it is replaced. The sink may be called from any thread that uses the
// library, one message at a time; the message view is valid only during the call. Thread-safe.
RETNET_API void set_log_callback(std::function<void(LogLevel, std::string_view)> sink);

}  // namespace retnet
