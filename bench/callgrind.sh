#!/usr/bin/env bash
# Instructions a query costs, counted by callgrind: repeatable, whatever
# else the machine is doing, where timings are not.
#
#   bench/callgrind.sh [ENTRIES] [QUERIES]     (defaults: 1000000 2000)
#
# Runs regblockd under callgrind on a signed list of ENTRIES names, with
# `cache` after regblock and a local answer behind it, warms it up, then
# has dnsperf ask QUERIES times for one name that passes (a cache hit), one
# query at a time, between two profile dumps. cgcount prints what one such
# query costs: instructions in all, in regblock's own functions, and
# goroutine stack copies. Then the same without regblock in the Corefile
# (the baseline). Needs valgrind, dnsperf and dig (apt-get install valgrind
# dnsperf dnsutils); takes about ten minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-1000000}
queries=${2:-2000}
for tool in valgrind callgrind_control dnsperf dig; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install valgrind dnsperf dnsutils)" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/regblockd" ./cmd/regblockd
go build -o "$work/genlist" ./bench/genlist
go build -o "$work/cgcount" ./bench/cgcount
# The synthetic names have three labels; national lists hold names of two
# labels as well, and a lookup probes only the suffixes of lengths a list
# holds: one name of two labels makes the query's two- and three-label
# suffixes probed (its TLD is skipped), as against such a list.
"$work/genlist" -n "$entries" -extra two-labels.example -dir "$work/lists" >/dev/null
mkdir "$work/run"
cp "$work/lists/bench.list" "$work/lists/bench.list.minisig" "$work/run/"
name=www.pass0001.test

# corefile WITH_REGBLOCK PORT
corefile() {
  echo ".:$2 {"
  echo "  bind 127.0.0.1"
  if [ "$1" = yes ]; then
    printf '%s\n' "  regblock {" "    lists $work/run" "    pubkey $work/lists/bench.pub" "    notice 192.0.2.80" "  }"
  fi
  printf '%s\n' "  cache" "  template IN A test {" '    answer "{{ .Name }} 60 IN A 192.0.2.1"' "  }" "}"
}

# dump PID PORT FILE: has callgrind write the profile so far to FILE.
# callgrind takes the request when the program next runs: a query wakes it
# (one query more or less in a span of thousands).
dump() {
  callgrind_control -d "$1" >/dev/null 2>&1 &
  for _ in $(seq 1 60); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$2" "$name" A >/dev/null || true
    grep -qs '^totals:' "$3" && return
    sleep 1
  done
  echo "bench: callgrind wrote no profile" >&2
  exit 1
}

# profile WITH_REGBLOCK OUT: the profile of $queries passed queries in OUT.2.
profile() {
  local port=$((20000 + RANDOM % 20000))
  corefile "$1" "$port" > "$work/Corefile"
  # Go's runtime reads the cycle counter with RDTSCP, which valgrind 3.19
  # does not know: cpu.rdtscp=off makes it use RDTSC. Asynchronous
  # preemption's signals upset callgrind. valgrind runs one thread at a
  # time, and with two Ps the runtime's background sweeper and an idle P
  # can trade yields for seconds (up to a million instructions a query in
  # some runs): one P keeps the count to the queries.
  GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --dump-instr=yes --compress-pos=no \
    --compress-strings=no --callgrind-out-file="$2" "$work/regblockd" -conf "$work/Corefile" > "$2.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do
    if [ "$1" = yes ]; then grep -q ' applied from ' "$2.log" && grep -q '^CoreDNS-' "$2.log" && break
    else grep -q '^CoreDNS-' "$2.log" && break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$2.log" >&2; exit 1; }
    sleep 1
  done
  dig +short +time=5 +tries=3 @127.0.0.1 -p "$port" "$name" A | grep -q 192.0.2.1 || { echo "bench: no answer" >&2; exit 1; }
  for _ in $(seq 1 "$queries"); do echo "$name A"; done > "$work/queries"
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -n 1 -q 1 -t 30 > /dev/null # warm up: stacks, GC pacing
  dump "$pid" "$port" "$2.1"
  # A query dnsperf gave up on (a collector pause under callgrind can take
  # seconds) was still answered, and counted: it is in the span all the same.
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -n 1 -q 1 -t 30 | grep 'Queries lost: *[1-9]' >&2 || true
  dump "$pid" "$port" "$2.2"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

for with in yes no; do
  echo "bench: regblock=$with: $queries queries for $name under callgrind" >&2
  profile $with "$work/profile.$with"
  if [ $with = yes ]; then echo "== with regblock, $entries names"; else echo "== without regblock (baseline)"; fi
  "$work/cgcount" -bin "$work/regblockd" -queries "$queries" "$work/profile.$with.2"
done
