#!/usr/bin/env bash
# Makes sure redis-server is on PATH. On a Debian-like machine run as root it
# installs the redis-server package with apt-get; elsewhere it says in one line
# how to get it. Under CI=true a missing redis-server is an error (the tests
# would otherwise skip); locally it is a warning and the integration tests skip.
set -u
if command -v redis-server >/dev/null 2>&1 || [ -n "${REDIS_SERVER:-}" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server missing: installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Only the binary is wanted: keep the package's service from starting.
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package's own service is not needed: the tests start their own servers.
  if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
fi
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
msg="redis-server not found: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_SERVER to its path"
if [ "${CI:-}" = true ]; then
  echo "error: $msg" >&2
  exit 1
fi
echo "warning: $msg; the integration tests will skip" >&2
