#!/usr/bin/env bash
# End-to-end load test of regblockd with dnsperf, on loopback only.
#
#   bench/dnsperf.sh [ENTRIES] [SECONDS] [ROUNDS]     (defaults: 1000000 10 3)
#
# Runs, alternately and ROUNDS times each, the same Corefile without regblock
# (baseline) and with regblock holding a signed list of ENTRIES names, and
# measures queries per second for names that pass (cache hits) and, with
# regblock, for blocked names. Then reloads the list three times under load
# and reports how long each new version took to be enforced (from the moment
# its files were in place) and how many queries were lost. Prints medians and ratios against the baseline measured
# in the same run. Needs dnsperf and dig (apt-get install dnsperf dnsutils).
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-1000000}
seconds=${2:-10}
rounds=${3:-3}
for tool in dnsperf dig; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install dnsperf dnsutils)" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/regblockd" ./cmd/regblockd
go build -o "$work/genlist" ./bench/genlist
"$work/genlist" -n "$entries" -dir "$work/lists" >/dev/null
mv "$work/lists/bench.key" "$work/bench.key"
port=$((20000 + RANDOM % 20000))

corefile() { # $1: with or without
  {
    echo ".:$port {"
    echo "  bind 127.0.0.1"
    if [ "$1" = with ]; then
      echo "  regblock {"
      echo "    lists $work/lists"
      echo "    pubkey $work/lists/bench.pub"
      echo "    notice 192.0.2.80"
      echo "  }"
    fi
    echo "  cache"
    echo '  template IN A test {'
    echo '    answer "{{ .Name }} 60 IN A 192.0.2.1"'
    echo '  }'
    echo "}"
  } > "$work/Corefile.$1"
}
corefile with; corefile without

start() { # $1: with or without; waits until it answers
  "$work/regblockd" -conf "$work/Corefile.$1" > "$work/regblockd.$1.log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 600); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" www.pass0000.test A >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "bench: regblockd did not start" >&2; cat "$work/regblockd.$1.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

qps() { # $1: query file; prints queries per second
  dnsperf -s 127.0.0.1 -p "$port" -d "$1" -l "$seconds" -c 4 -q 200 2>/dev/null | awk '/Queries per second:/ {print $4}'
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

declare -a base_pass with_pass with_block mem
for r in $(seq 1 "$rounds"); do
  start without; dig +short @127.0.0.1 -p "$port" www.pass0000.test >/dev/null
  base_pass+=("$(qps "$work/lists/passed.txt")")
  stop
  start with
  mem+=("$(rss)")
  with_pass+=("$(qps "$work/lists/passed.txt")")
  with_block+=("$(qps "$work/lists/blocked.txt")")
  stop
  echo "round $r: baseline passed ${base_pass[-1]} q/s; regblock passed ${with_pass[-1]} q/s, blocked ${with_block[-1]} q/s; RSS ${mem[-1]} kB" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bp=$(median "${base_pass[@]}"); wp=$(median "${with_pass[@]}"); wb=$(median "${with_block[@]}"); m=$(median "${mem[@]}")

# Reloads under load: a new signed version with a marker name, while dnsperf
# sends passed names; time until the marker is blocked, and queries lost,
# against a run of the same length without reloads (dnsperf counts the
# queries still in flight when it stops as lost).
start with
steady_lost=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l $((seconds + 20)) -c 4 -q 200 2>&1 | awk '/Queries lost:/ {print $3}')
reload_times=()
dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l $((seconds + 20)) -c 4 -q 200 > "$work/reload.dnsperf" 2>&1 &
perf=$!; pids+=("$perf")
sleep 2
for k in 2 3 4; do
  "$work/genlist" -n "$entries" -dir "$work/lists" -serial "$k" -extra "marker$k.test" -key "$work/bench.key" >/dev/null
  t0=$(date +%s%N)
  until dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" "marker$k.test" A | grep -q 192.0.2.80; do sleep 0.01; done
  reload_times+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
done
wait "$perf" || true
lost=$(awk '/Queries lost:/ {print $3}' "$work/reload.dnsperf")
sent=$(awk '/Queries sent:/ {print $3}' "$work/reload.dnsperf")
stop

printf '\nregblockd, %s entries, %s s runs, median of %s rounds, %s\n' "$entries" "$seconds" "$rounds" "$(nproc) cores"
printf '| measure | value | ratio to baseline |\n| --- | --- | --- |\n'
printf '| baseline (no regblock), passed names, q/s | %s | 1.00 |\n' "$bp"
printf '| regblock, passed names, q/s | %s | %.3f |\n' "$wp" "$(awk -v a="$wp" -v b="$bp" 'BEGIN {print a / b}')"
printf '| regblock, blocked names, q/s | %s | %.3f |\n' "$wb" "$(awk -v a="$wb" -v b="$bp" 'BEGIN {print a / b}')"
printf '| regblock resident memory | %s MB | |\n' "$((m / 1024))"
printf '| reload under load, write to enforced (3 reloads) | %s ms | |\n' "$(IFS=' '; echo "${reload_times[*]}")"
printf '| queries lost during reloads (same run without reloads) | %s of %s (%s) | |\n' "$lost" "$sent" "$steady_lost"
