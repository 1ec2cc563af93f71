// Result<T>: the one error model for expected failures (bad input, network,
// disk). Exceptions stay inside coroutine bodies and config parsing.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace stele {

// One bad field of an input document: JSON-pointer-like path ("/cpus") and
// the reasons it is wrong. Used for 422 answers.
struct FieldError {
  std::string path;
  std::vector<std::string> errors;
};

struct Error {
  std::string message;
  std::vector<FieldError> details;  // empty unless the error is about input fields
  int code = 0;                     // optional HTTP-ish status hint (0 = unspecified)
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message, int code = 0) {
  return tl::unexpected<Error>(Error{std::move(message), {}, code});
}

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

}  // namespace stele
