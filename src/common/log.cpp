#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace stele {
void init_logging(const std::string& role, bool verbose) {
  auto logger = spdlog::stderr_color_mt(role);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}
}  // namespace stele
