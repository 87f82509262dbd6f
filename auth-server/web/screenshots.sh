#!/usr/bin/env bash
# Rewrites docs/screenshots/: every page at phone (390 px) and desktop (1280 px) widths, taken by
# the browser test (auth-server/tests/web.rs) as it walks the pages against a real server, so
# the pictures show what the tests check. Needs what that test needs (see .ci/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$PWD/docs/screenshots"
rm -rf "$out"
mkdir -p "$out"
if [ ! -d auth-server/tests/web/node_modules/playwright-core ]; then
  (cd auth-server/tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
AUTH_WEB_SCREENSHOTS="$out" cargo test -p auth-server --test web -- --nocapture
ls "$out"
