#include "net/offload.h"

namespace stele::net {

boost::asio::thread_pool& worker_pool() {
  static boost::asio::thread_pool pool(2);
  return pool;
}

}  // namespace stele::net
