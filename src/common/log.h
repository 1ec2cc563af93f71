// Logging: spdlog, one process-wide logger writing to stderr.
#pragma once
#include <spdlog/spdlog.h>

namespace stele {
void init_logging(const std::string& role, bool verbose);
}
