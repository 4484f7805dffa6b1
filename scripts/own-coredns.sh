#!/usr/bin/env bash
# Builds a stock CoreDNS (the version this repository's go.mod requires)
# with regblock added through plugin.cfg, as the README's "Your own CoreDNS"
# says, from this checkout, and checks that the binary has regblock right
# before cache. Usage: scripts/own-coredns.sh [OUT]   (default: ./coredns)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$PWD/coredns}
version=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/coredns/coredns)
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
(cd "$repo" && go mod download github.com/coredns/coredns)
cp -r "$(cd "$repo" && go env GOMODCACHE)/github.com/coredns/coredns@$version/." "$src"
chmod -R u+w "$src"
cd "$src"
# regblock goes right before cache, so that block answers are never cached.
sed -i 's|^cache:cache$|regblock:github.com/regblock/regblock/plugin/regblock\ncache:cache|' plugin.cfg
go mod edit -require github.com/regblock/regblock@v0.0.0 -replace "github.com/regblock/regblock=$repo"
go generate coredns.go
go mod tidy
go build -o "$out" .
plugins=$("$out" -plugins | tr '\n' ' ')
case "$plugins" in
  *regblock*) ;;
  *) echo "regblock is not in $out -plugins" >&2; exit 1 ;;
esac
grep -A1 '"regblock",' core/dnsserver/zdirectives.go | grep -q '"cache",' || { echo "regblock is not right before cache" >&2; exit 1; }
echo "$out: CoreDNS $version with regblock before cache"
