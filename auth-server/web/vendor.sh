#!/usr/bin/env bash
# Copies the third-party browser files the pages use out of their npm packages, at pinned
# versions, into auth-server/web/vendor/ (committed: `cargo build` embeds them and needs no npm;
# at run time no request leaves for the internet).
#
#   auth-server/web/vendor.sh          rewrite vendor/ from the registry
#   auth-server/web/vendor.sh --check  fail if the committed vendor/ differs from what it writes
#
# `npm pack` fetches each tarball through npm's own client, which checks it against the
# registry's integrity hash; the packages are copied, never built, so the output is the same
# bytes every time. qrcode-generator ships no LICENSE file: its MIT notice heads qrcode.js.
set -euo pipefail
cd "$(dirname "$0")"

# package@version  file-in-package  name-in-vendor
FILES=(
  "swagger-ui-dist@5.35.0 package/swagger-ui-bundle.js swagger-ui-bundle.js"
  "swagger-ui-dist@5.35.0 package/swagger-ui.css swagger-ui.css"
  "swagger-ui-dist@5.35.0 package/LICENSE LICENSE.swagger-ui"
  "swagger-ui-dist@5.35.0 package/swagger-ui-bundle.js.LICENSE.txt swagger-ui-bundle.js.LICENSE.txt"
  "hls.js@1.7.4 package/dist/hls.min.js hls.min.js"
  "hls.js@1.7.4 package/LICENSE LICENSE.hls.js"
  "jsqr@1.4.0 package/dist/jsQR.js jsQR.js"
  "jsqr@1.4.0 package/LICENSE LICENSE.jsqr"
  "qrcode-generator@2.0.4 package/dist/qrcode.js qrcode.js"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out" "$work/packs"

for entry in "${FILES[@]}"; do
  read -r pkg _ _ <<<"$entry"
  dir="$work/packs/$pkg"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    tarball=$(cd "$dir" && npm pack --silent "$pkg" | tail -n 1)
    tar -xzf "$dir/$tarball" -C "$dir"
  fi
done
for entry in "${FILES[@]}"; do
  read -r pkg from to <<<"$entry"
  cp "$work/packs/$pkg/$from" "$work/out/$to"
done
{
  echo "# Written by vendor.sh: package@version file"
  for entry in "${FILES[@]}"; do
    read -r pkg from to <<<"$entry"
    echo "$pkg $from -> $to"
  done
} >"$work/out/VERSIONS"

if [ "${1:-}" = "--check" ]; then
  if diff -r "$work/out" vendor >/dev/null; then
    echo "vendor/ matches vendor.sh"
  else
    diff -rq "$work/out" vendor >&2 || true
    echo "vendor/ differs from what vendor.sh writes: run auth-server/web/vendor.sh" >&2
    exit 1
  fi
else
  rm -rf vendor
  cp -r "$work/out" vendor
  echo "vendor/ written"
fi
