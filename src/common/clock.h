// Clock: injected time source so controllers can be tested on a simulated
// clock (Envoy's TimeSource). Times are milliseconds since the Unix epoch.
#pragma once
#include <cstdint>
#include <string>

namespace stele {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
};

// Wall clock.
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
};

// Simulated clock: advances only when told. Not thread-safe.
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_; }
  void advance_ms(int64_t d) { now_ += d; }

 private:
  int64_t now_;
};

// ISO-8601 UTC with milliseconds: "2026-11-27T03:09:09.123Z" (Marathon versions).
std::string iso8601(int64_t ms);
// Parses iso8601() output (and without millis); -1 when malformed.
int64_t parse_iso8601(const std::string& s);

}  // namespace stele
