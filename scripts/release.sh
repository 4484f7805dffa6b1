#!/usr/bin/env bash
# Builds regblockd and regblock for linux/amd64 and linux/arm64 into OUT
# (default dist/), with the version stamped (VERSION, or `git describe`),
# and writes OUT/SHA256SUMS. Static binaries (CGO_ENABLED=0), reproducible
# paths (-trimpath). OUT must not exist yet, or be empty: a release never
# mixes with an older one.
# Usage: scripts/release.sh [VERSION] [-o OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=auto # at least go.mod's toolchain line, the patched Go we ship with
version="" out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=${2:?-o needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "release.sh: unknown flag $1 (usage: scripts/release.sh [VERSION] [-o OUT])" >&2; exit 2 ;;
    *) version=$1; shift ;;
  esac
done
version=${version:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "release.sh: $out is not empty: remove it, or give another with -o" >&2
  exit 1
fi
mkdir -p "$out"
ldflags="-s -w -X github.com/regblock/regblock/plugin/pkg/version.stamped=$version"
for arch in amd64 arm64; do
  for cmd in regblockd regblock; do
    bin="${cmd}_${version}_linux_${arch}"
    echo "building $out/$bin"
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out/$bin" "./cmd/$cmd"
  done
done
(cd "$out" && sha256sum regblock* > SHA256SUMS)
cat "$out/SHA256SUMS"
