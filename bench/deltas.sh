#!/usr/bin/env bash
# A signed delta against a whole reload of the same change, under load, on
# loopback only.
#
#   bench/deltas.sh [ENTRIES] [CHANGE] [QPS]     (defaults: 10000000 1000 10000)
#
# Makes a signed list of ENTRIES names (bench/genlist), a next version that
# adds CHANGE names (regblock sign -bump), and the delta between them
# (regblock delta, signed). Then runs regblockd four times while dnsperf
# offers QPS queries a second of names that pass (cache hits): without
# regblock (what this machine gives a server that blocks nothing), then on
# the first version with nothing landing (the baseline), as the delta
# lands in its lists directory, and as the whole next version replaces
# the list. For
# each it prints the time from the file landing (its rename into place) to
# the first blocked answer for an added name, the lowest 1-second rate
# served against the rate offered, the 99.9th percentile and the largest
# of the latencies dnsperf saw, and the peak resident memory against the
# steady one. Needs dnsperf and dig (apt-get install dnsperf dnsutils),
# and about 3 GB of memory for 10 million names.
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-10000000}
change=${2:-1000}
qps=${3:-10000}
before=5 # seconds of load before the file lands
after=15 # and after
for tool in dnsperf dig; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install dnsperf dnsutils)" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/regblockd" ./cmd/regblockd
go build -o "$work/genlist" ./bench/genlist
go build -o "$work/regblock" ./cmd/regblock
go build -o "$work/firstblock" ./bench/firstblock
echo "bench: making a list of $entries names, the next version with $change more, and the delta" >&2
"$work/genlist" -n "$entries" -dir "$work/lists" >/dev/null
key=$work/lists/bench.key
mkdir "$work/next"
cp "$work/lists/bench.list" "$work/next/bench.list"
for i in $(seq 1 "$change"); do echo "added$i.test"; done >> "$work/next/bench.list"
"$work/regblock" sign -s "$key" -bump "$work/next/bench.list" >/dev/null
"$work/regblock" delta -o "$work/next/bench.1.delta" "$work/lists/bench.list" "$work/next/bench.list"
"$work/regblock" sign -s "$key" "$work/next/bench.1.delta" >/dev/null
echo "bench: list $(du -h "$work/lists/bench.list" | cut -f1), delta $(du -h "$work/next/bench.1.delta" | cut -f1)" >&2
port=$((20000 + RANDOM % 20000))
printf '%s\n' ".:$port {" "  bind 127.0.0.1" "  regblock {" "    lists $work/run" "    pubkey $work/lists/bench.pub" \
  "    notice 192.0.2.80" "  }" "  cache" "  template IN A test {" '    answer "{{ .Name }} 60 IN A 192.0.2.1"' "  }" "}" > "$work/Corefile"
# The same server without regblock: what this machine gives a server
# that does no blocking at all under the same load (its largest latency
# most of all: one query's, at the mercy of the machine).
printf '%s\n' ".:$port {" "  bind 127.0.0.1" "  cache" "  template IN A test {" '    answer "{{ .Name }} 60 IN A 192.0.2.1"' "  }" "}" > "$work/Corefile.none"
first_blocked=$(awk 'NR == 1 {print $1}' "$work/lists/blocked.txt")
first_passed=$(awk 'NR == 1 {print $1}' "$work/lists/passed.txt")

blocked() { dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" "$1" A 2>/dev/null | grep -q 192.0.2.80; }
answers() { dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" "$1" A 2>/dev/null | grep -q 192.0.2.1; }
kb() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$pid/status"; }

# land FILE...: renames each file of $work/next into the lists directory,
# in the order given, from a copy made beside it (one rename each: the
# moment a file lands).
land() {
  for f in "$@"; do cp "$work/next/$f" "$work/run/.$f"; done
  t0=$(date +%s%N)
  for f in "$@"; do mv "$work/run/.$f" "$work/run/$f"; done
}

run() { # $1: delta, whole, nothing (the same run with no change: the baseline), or none (no regblock)
  rm -rf "$work/run" && mkdir "$work/run"
  cp "$work/lists/bench.list" "$work/lists/bench.list.minisig" "$work/run/"
  if [ "$1" = none ]; then
    "$work/regblockd" -conf "$work/Corefile.none" > "$work/regblockd.$1.log" 2>&1 &
    ready() { answers "$first_passed"; }
  else
    "$work/regblockd" -conf "$work/Corefile" > "$work/regblockd.$1.log" 2>&1 &
    ready() { blocked "$first_blocked"; }
  fi
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 6000); do ready && break; sleep 0.1; done
  ready || { echo "bench: regblockd did not start" >&2; cat "$work/regblockd.$1.log" >&2; exit 1; }
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l 3 -Q "$qps" >/dev/null 2>&1 # warm the cache
  sleep 2
  steady=$(kb VmRSS)
  echo 5 > "/proc/$pid/clear_refs" # VmHWM starts again from VmRSS
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l $((before + after)) -Q "$qps" -S 1 -v > "$work/$1.dnsperf" 2>&1 &
  perf=$!; pids+=("$perf")
  sleep "$before"
  enforced=-
  if [ "$1" = delta ] || [ "$1" = whole ]; then
    "$work/firstblock" -s "127.0.0.1:$port" -name added1.test -timeout 30s > "$work/$1.first" &
    probe=$!; pids+=("$probe")
    sleep 0.5 # asking already
    if [ "$1" = delta ]; then land bench.1.delta.minisig bench.1.delta; else land bench.list.minisig bench.list; fi
    enforced="not within 30 s"
    if wait "$probe"; then enforced="$(( ($(cat "$work/$1.first") - t0) / 1000000 )) ms"; fi
  fi
  wait "$perf" || true
  peak=$(kb VmHWM)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The first and last intervals are partial.
  lowest=$(awk '/^[0-9.]+: [0-9.]+$/ {print $2}' "$work/$1.dnsperf" | sed '1d;$d' | sort -g | head -1)
  maxlat=$(awk '/Average Latency/ {gsub(/\)/, "", $NF); print $NF * 1000}' "$work/$1.dnsperf")
  # One query's latency is at this machine's mercy; the 99.9th percentile
  # of all of them (dnsperf -v prints each: "> RCODE NAME TYPE SECONDS") is not.
  p999=$(awk '/^> / {print $NF * 1000}' "$work/$1.dnsperf" | sort -g | awk '{l[NR] = $1} END {i = int(NR * 0.999); if (i < 1) i = 1; print l[i]}')
  lost=$(awk '/Queries lost:/ {print $3, $4}' "$work/$1.dnsperf")
  label=$1
  [ "$1" = none ] && label="no regblock"
  printf '| %s | %s | %.0f q/s (%.1f %%) | %.1f ms | %.1f ms | %s | %s MB (%s MB) | %.2f |\n' "$label" "$enforced" "$lowest" \
    "$(awk -v a="$lowest" -v b="$qps" 'BEGIN {print 100 * a / b}')" "$p999" "$maxlat" "$lost" "$((peak / 1024))" "$((steady / 1024))" \
    "$(awk -v a="$peak" -v b="$steady" 'BEGIN {print a / b}')" >> "$work/table"
  tail -1 "$work/table" >&2
  grep -h "applied from" "$work/regblockd.$1.log" | tail -1 >&2 || true
}

: > "$work/table"
run none
run nothing
run delta
run whole
printf '\n%s names, %s added, %s q/s offered of names that pass, %s cores\n' "$entries" "$change" "$qps" "$(nproc)"
printf '| change arrives as | file landed to first blocked answer | lowest 1-s rate served | 99.9th percentile latency | largest latency | queries lost | peak RSS (steady) | peak / steady |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
cat "$work/table"
