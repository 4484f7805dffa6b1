#!/usr/bin/env bash
# Fails when the code reaches a known vulnerability, in the standard
# library of the toolchain that builds it or in a module it requires.
#
# govulncheck reads its database from a directory built here from the
# golang.org/x/vulndb module (its OSV files, indexed by the module's own
# cmd/indexdb), so it needs nothing but the Go module proxy. The database
# version is pinned below, so that a run is repeatable; to refresh it:
#   VULNDB=$(cd /tmp && go list -m -f '{{.Version}}' golang.org/x/vulndb@latest) scripts/vulncheck.sh
# and, when it passes, write that version into VULNDB below.
# Exit status: 0 when nothing reachable is found, non-zero when something
# is (govulncheck lists each with a call trace) or the check could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=auto # go.mod's toolchain line: the toolchain we ship with
VULNDB=${VULNDB:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK=v1.10.0

db="${XDG_CACHE_HOME:-$HOME/.cache}/regblock/vulndb-$VULNDB"
if [ ! -f "$db/index/db.json" ]; then
  src=$(cd "$(mktemp -d)" && go mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$db.tmp"
  echo "vulncheck: indexing the vulnerability database $VULNDB (about two minutes)"
  (cd "$src" && go run ./cmd/indexdb -vulns data/osv -out "$db.tmp")
  mv "$db.tmp" "$db"
fi
go version
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK" -db "file://$db" ./...
