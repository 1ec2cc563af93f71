// Helpers shared by the logs tests.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/json.h"

namespace stele::logs::test_support {

// A JSON value as msgpack bytes (a record as senders encode it).
inline std::string pack(const Json& j) {
  auto v = Json::to_msgpack(j);
  return {v.begin(), v.end()};
}

// Polls `cond` every 20 ms until it holds (true) or `timeout` passed (false).
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace stele::logs::test_support
