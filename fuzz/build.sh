#!/usr/bin/env bash
# Builds fuzz targets with clang + libFuzzer + ASan into build-fuzz/.
#   fuzz/build.sh            all fuzz/*_fuzz.cpp
#   fuzz/build.sh spec       only fuzz/spec_fuzz.cpp
# Each target names the sources it needs in a line of its own, and the
# libraries it links in another (optional):
#   // fuzz-sources: src/common/spec.cpp src/common/names.cpp ...
#   // fuzz-libs: -lz -lcrypto
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CXX="${CXX:-clang++-14}"
out="$root/build-fuzz"
mkdir -p "$out"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cpp; do targets+=("$(basename "$f" _fuzz.cpp)"); done
fi

for name in "${targets[@]}"; do
  src="fuzz/${name}_fuzz.cpp"
  [ -f "$src" ] || { echo "build.sh: no $src" >&2; exit 2; }
  sources=$(sed -n 's|^// fuzz-sources:||p' "$src" | head -1)
  libs=$(sed -n 's|^// fuzz-libs:||p' "$src" | head -1)
  echo "build.sh: $name <- $src $sources $libs"
  # shellcheck disable=SC2086
  # Boost 1.74 does not detect clang 14's C++20 coroutines on its own.
  "$CXX" -std=c++20 -g -O1 -fsanitize=fuzzer,address -I src \
    -DBOOST_ASIO_HAS_CO_AWAIT -DBOOST_ASIO_HAS_STD_COROUTINE \
    $sources "$src" $libs -o "$out/${name}_fuzz"
done
