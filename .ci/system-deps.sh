#!/usr/bin/env bash
# System packages the test suite needs, installed from Debian only when missing:
# Chromium (browser tests); PostgreSQL and Redis binaries when no server answers on the default ports
# (the suite then starts throwaway ones itself).
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)  # Traditional Chinese in screenshots
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && [ -z "${DATABASE_URL:-}" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null || need+=(redis-server)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
