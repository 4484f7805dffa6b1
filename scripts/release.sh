#!/usr/bin/env bash
# Builds regblockd and regblock for linux/amd64 and linux/arm64 into dist/,
# with the version stamped (VERSION, or `git describe`), and writes
# dist/SHA256SUMS. Static binaries (CGO_ENABLED=0), reproducible paths
# (-trimpath). Usage: scripts/release.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=auto # at least go.mod's toolchain line, the patched Go we ship with
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
ldflags="-s -w -X github.com/regblock/regblock/plugin/pkg/version.stamped=$version"
rm -rf dist && mkdir dist
for arch in amd64 arm64; do
  for cmd in regblockd regblock; do
    out="dist/${cmd}_${version}_linux_${arch}"
    echo "building $out"
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out" "./cmd/$cmd"
  done
done
(cd dist && sha256sum regblock* > SHA256SUMS)
cat dist/SHA256SUMS
