#!/usr/bin/env bash
# Re-copy the vendored front-end libraries from node_modules (pinned in package.json); no CDN is used.
# Usage: `make vendor` (runs `npm ci` first), or run this script after `npm ci`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
src="$root/node_modules/chart.js"
if [[ ! -f "$src/dist/chart.umd.min.js" ]]; then
  echo "chart.js is missing from node_modules: run npm ci first" >&2
  exit 1
fi
version="$(node -p "require('$src/package.json').version")"
# The source map is not vendored, so its comment goes (collectstatic's manifest storage would look for it).
sed '/^\/\/# sourceMappingURL=/d' "$src/dist/chart.umd.min.js" > "$here/chart.umd.min.js"
cp "$src/LICENSE.md" "$here/chart.js.LICENSE.md"
echo "vendored chart.js $version into $here"
