// offload(): runs blocking work (disk, hashing, packing, a synchronous
// download) on a worker pool and resumes the calling coroutine on its own
// executor with the result, so the io thread keeps serving meanwhile.
//
// The function runs on a worker thread: it must only touch what it owns
// (capture by value). If the caller's io_context is destroyed first, the
// result is dropped with the suspended coroutine. Pass the lambda as a named
// local (g++ 12 mishandles temporaries inside co_await expressions).
#pragma once
#include <type_traits>
#include <utility>  // before Asio with g++ 12

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/http.h"

namespace stele::net {

// The server's shared pool: two threads, blocking work there is rare and a
// 2-core host gains nothing from more. (Agents keep their own pool so long
// downloads never queue behind other work.)
boost::asio::thread_pool& worker_pool();

template <class F>
awaitable<std::invoke_result_t<F&>> offload(boost::asio::thread_pool& pool, F fn) {
  namespace asio = boost::asio;
  using T = std::invoke_result_t<F&>;
  auto home = co_await asio::this_coro::executor;
  auto initiate = [&pool, home](auto handler, F work) {
    asio::post(pool, [handler = std::move(handler), work = std::move(work), home]() mutable {
      T result = work();
      asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
        std::move(handler)(std::move(result));
      });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      std::move(initiate), asio::use_awaitable, std::move(fn));
}

template <class F>
awaitable<std::invoke_result_t<F&>> offload(F fn) {
  return offload(worker_pool(), std::move(fn));
}

}  // namespace stele::net
