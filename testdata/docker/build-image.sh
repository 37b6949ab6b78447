#!/usr/bin/env bash
# Builds quorumlock/redis:7-local, a FROM scratch Redis image made from the
# host's redis-server, for machines that cannot pull redis:7 from a registry.
# The build context is a temporary directory holding rootfs/ (redis-server,
# every library ldd lists, the dynamic loader, an empty /data and /tmp) and
# the Dockerfile next to this script.
#
# Idempotent: an existing image is kept unless FORCE=1. The binary is
# $REDIS_SERVER if set, else redis-server on $PATH. Progress goes to stderr;
# the image name is printed on stdout. Usage: bash testdata/docker/build-image.sh
set -euo pipefail

image="${IMAGE:-quorumlock/redis:7-local}"
src="${BASH_SOURCE[0]}"
[ "${src%/*}" = "$src" ] && here=. || here="${src%/*}"

die() { echo "build-image.sh: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 ||
  die "docker not found: install Docker Engine (https://docs.docker.com/engine/install/)"
bin="${REDIS_SERVER:-$(command -v redis-server 2>/dev/null || true)}"
[ -n "$bin" ] && [ -x "$bin" ] ||
  die "redis-server not found: install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_SERVER"
command -v ldd >/dev/null 2>&1 || die "ldd not found: it is needed to list redis-server's libraries"
docker info >/dev/null 2>&1 || die "cannot reach the Docker daemon (is it running, and may this user use it?)"

if [ "${FORCE:-}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-image.sh: $image exists (FORCE=1 rebuilds)" >&2
  echo "$image"
  exit 0
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/quorumlock-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"

# copy SRC DEST-IN-ROOTFS: the file's content (symlinks followed), mode kept.
copy() { mkdir -p "$root$(dirname "$2")" && cp -L --preserve=mode "$1" "$root$2"; }

copy "$bin" /usr/bin/redis-server
# ldd lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
# "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
libs="$(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }')"
[ -n "$libs" ] || die "ldd lists no libraries for $bin (a static binary needs none, but then use a different image recipe)"
for lib in $libs; do
  copy "$lib" "$lib"
done
loader=/lib64/ld-linux-x86-64.so.2
if [ -e "$loader" ] && [ ! -e "$root$loader" ]; then
  copy "$loader" "$loader"
fi
mkdir -p "$root/data" "$root/tmp"
: >"$root/data/.keep"
: >"$root/tmp/.keep"
chmod 1777 "$root/tmp"
cp "$here/Dockerfile" "$ctx/Dockerfile"

echo "build-image.sh: building $image from $bin ($(echo "$libs" | wc -l) libraries)" >&2
docker build -q -t "$image" "$ctx" >&2 || die "docker build of $image failed"
echo "$image"
