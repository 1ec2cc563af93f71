#!/bin/sh
# The build step of the sample app (stele.json "build"): renders the page
# templates into public/ and writes BUILD_INFO. Deterministic: the output
# depends only on the source tree (no dates, no commit id), so the same tree
# always makes the same slug.
set -eu
export LC_ALL=C

echo "building as $(id -un) in $(pwd)"
if [ -n "${STELE_CACHE_DIR:-}" ]; then
  echo "build cache: $STELE_CACHE_DIR"
fi

# A digest of the source files: what the slug is made from.
digest=$(find . \( -path ./public -o -path ./.git -o -name __pycache__ \) -prune -o \
              -type f ! -name BUILD_INFO -print0 \
         | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)

mkdir -p public
for tpl in templates/*.in; do
  out="public/$(basename "$tpl" .in)"
  sed -e "s/@APP@/hello/g" -e "s/@SOURCE_DIGEST@/$digest/g" "$tpl" > "$out"
  echo "rendered $out"
done

printf 'app hello\nsource-digest %s\nbuild-cmd sh build.sh\n' "$digest" > BUILD_INFO
echo "source digest $digest"
