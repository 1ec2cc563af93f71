// run(aw): runs a coroutine (and whatever it leaves behind) to completion on
// a fresh io_context and returns its result; exceptions propagate. For tests
// of async code.
#pragma once
#include <exception>
#include <optional>
#include <utility>  // before asio, for g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "net/http.h"

namespace stele::test {

template <class T>
T run(net::awaitable<T> aw) {
  boost::asio::io_context io;
  std::optional<T> out;
  boost::asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  io.run();
  return std::move(*out);
}

}  // namespace stele::test
