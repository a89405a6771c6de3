// The library's own spdlog logger, behind retnet::set_log_level / set_log_callback (log.cpp).
//
// It is neither spdlog's default logger nor registered with spdlog: libspdlog is a shared library,
// so its default logger is one per process, and an application that logs with spdlog itself must
// keep its logger, pattern and level whatever retnet does (tests/unit/log_test.cpp). Library code
// logs with lib_log().warn(...) etc., never with spdlog::warn(...).
#pragma once
#include <spdlog/logger.h>

namespace retnet {

spdlog::logger& lib_log();

}  // namespace retnet
