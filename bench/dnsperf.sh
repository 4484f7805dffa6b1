#!/usr/bin/env bash
# End-to-end load test of regblockd with dnsperf, on loopback only.
#
#   bench/dnsperf.sh [ENTRIES] [SECONDS] [ROUNDS]     (defaults: 1000000 10 3)
#
# Runs, alternately and ROUNDS times each, the same Corefile without regblock
# (baseline), with regblock holding a signed list of ENTRIES names, and with
# regblock holding that list hashed (regblock hash), and measures queries per
# second for names that pass (cache hits) and, with regblock, for blocked
# names. Then reloads the list three times under load
# and reports how long each new version took to be enforced (from the moment
# its files were in place) and how many queries were lost. Last, the same
# list exported to RPZ (regblock export) is loaded into Unbound, and both
# resolvers' load time (start to the first blocked answer), resident memory
# and queries per second are printed side by side. Prints medians and ratios
# against the baseline measured in the same run. Needs dnsperf and dig, and
# unbound for the comparison (apt-get install dnsperf dnsutils unbound).
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
go build -o "$work/regblock" ./cmd/regblock
"$work/genlist" -n "$entries" -dir "$work/lists" >/dev/null
mv "$work/lists/bench.key" "$work/bench.key"
mkdir "$work/hashed"
"$work/regblock" hash -o "$work/hashed/bench.list" "$work/lists/bench.list" >/dev/null
"$work/regblock" sign -s "$work/bench.key" "$work/hashed/bench.list" >/dev/null
port=$((20000 + RANDOM % 20000))

corefile() { # $1: with, hashed or without
  {
    echo ".:$port {"
    echo "  bind 127.0.0.1"
    if [ "$1" != without ]; then
      echo "  regblock {"
      if [ "$1" = with ]; then echo "    lists $work/lists"; else echo "    lists $work/hashed"; fi
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
corefile with; corefile hashed; corefile without

# until_answers PORT NAME WANT: polls (at most 10 minutes) until NAME's A
# answer from 127.0.0.1#PORT contains WANT.
until_answers() {
  for _ in $(seq 1 6000); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" "$2" A 2>/dev/null | grep -q "$3" && return
    sleep 0.1
  done
  return 1
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
first_blocked=$(awk 'NR == 1 {print $1}' "$work/lists/blocked.txt")

start() { # $1: with, hashed or without; waits until it answers (with, hashed: blocks)
  local t0 want=192.0.2.1 name=www.pass0000.test
  [ "$1" != without ] && want=192.0.2.80 name=$first_blocked
  t0=$(date +%s%N)
  "$work/regblockd" -conf "$work/Corefile.$1" > "$work/regblockd.$1.log" 2>&1 &
  pid=$!; pids+=("$pid")
  if until_answers "$port" "$name" "$want"; then
    loaded_ms=$(ms_since "$t0")
    return
  fi
  echo "bench: regblockd did not start" >&2; cat "$work/regblockd.$1.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

qps() { # $1: query file; prints queries per second
  dnsperf -s 127.0.0.1 -p "$port" -d "$1" -l "$seconds" -c 4 -q 200 2>/dev/null | awk '/Queries per second:/ {print $4}'
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

declare -a base_pass with_pass with_block mem load base_mem hashed_pass hashed_block
for r in $(seq 1 "$rounds"); do
  start without; dig +short @127.0.0.1 -p "$port" www.pass0000.test >/dev/null
  base_mem+=("$(rss)")
  base_pass+=("$(qps "$work/lists/passed.txt")")
  stop
  start with
  load+=("$loaded_ms")
  mem+=("$(rss)")
  with_pass+=("$(qps "$work/lists/passed.txt")")
  with_block+=("$(qps "$work/lists/blocked.txt")")
  stop
  start hashed
  hashed_pass+=("$(qps "$work/lists/passed.txt")")
  hashed_block+=("$(qps "$work/lists/blocked.txt")")
  stop
  echo "round $r: baseline passed ${base_pass[-1]} q/s; regblock passed ${with_pass[-1]} q/s, blocked ${with_block[-1]} q/s; RSS ${mem[-1]} kB; hashed list: passed ${hashed_pass[-1]} q/s, blocked ${hashed_block[-1]} q/s" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bp=$(median "${base_pass[@]}"); wp=$(median "${with_pass[@]}"); wb=$(median "${with_block[@]}"); m=$(median "${mem[@]}"); ld=$(median "${load[@]}"); bm=$(median "${base_mem[@]}")
hp=$(median "${hashed_pass[@]}"); hb=$(median "${hashed_block[@]}")

# Reloads under load: a new signed version with a marker name, while dnsperf
# sends passed names; time until the marker is blocked, queries lost, the
# 99th percentile latency of a 1000 q/s probe beside the load, and the peak
# resident memory, against a run of the same length without reloads
# (dnsperf counts the queries still in flight when it stops as lost).
p99() { awk '/^> / {print $NF}' "$1" | sort -g | awk '{a[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", a[i] * 1000}'; }
load_and_probe() { # $1: name of the run; dnsperf load and probe in the background
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l $((seconds + 20)) -c 4 -q 200 > "$work/$1.dnsperf" 2>&1 &
  perf=$!; pids+=("$perf")
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/lists/passed.txt" -l $((seconds + 20)) -Q 1000 -v > "$work/$1.probe" 2>&1 &
  probe=$!; pids+=("$probe")
}
start with
load_and_probe steady
wait "$perf" "$probe" || true
steady_lost=$(awk '/Queries lost:/ {print $3}' "$work/steady.dnsperf")
steady_p99=$(p99 "$work/steady.probe")
steady_rss=$(rss)
echo 5 > "/proc/$pid/clear_refs" # VmHWM starts again from VmRSS
reload_times=()
load_and_probe reload
sleep 2
for k in 2 3 4; do
  "$work/genlist" -n "$entries" -dir "$work/lists" -serial "$k" -extra "marker$k.test" -key "$work/bench.key" >/dev/null
  t0=$(date +%s%N)
  until dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" "marker$k.test" A | grep -q 192.0.2.80; do sleep 0.01; done
  reload_times+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
done
wait "$perf" "$probe" || true
lost=$(awk '/Queries lost:/ {print $3}' "$work/reload.dnsperf")
sent=$(awk '/Queries sent:/ {print $3}' "$work/reload.dnsperf")
reload_p99=$(p99 "$work/reload.probe")
reload_peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
stop

# Unbound with the same list as an RPZ zone, one thread, forwarding passed
# names to a regblockd without the plugin (the baseline) on the first port.
unbound_need=$((entries * 5 / 2)) # kB: Unbound keeps about 2.3 KB an entry
unbound_have=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if ! command -v unbound >/dev/null; then
  echo "bench: unbound is not installed (apt-get install unbound): no comparison with Unbound's RPZ" >&2
elif [ "$unbound_need" -gt "$((unbound_have / 2))" ]; then
  echo "bench: Unbound would need about $((unbound_need / 1024)) MB for $entries entries, more than half of the $((unbound_have / 1024)) MB available: no comparison" >&2
else
  "$work/regblock" export -format rpz -p "$work/lists/bench.pub" -notice 192.0.2.80 -o "$work/bench.rpz" "$work/lists/bench.list"
  uport=$((port + 1))
  printf '%s\n' "server:" "  interface: 127.0.0.1" "  port: $uport" "  do-daemonize: no" "  chroot: \"\"" \
    "  username: \"\"" "  directory: \"$work\"" "  pidfile: \"\"" "  use-syslog: no" "  logfile: \"$work/unbound.log\"" \
    "  num-threads: 1" "  do-ip6: no" "  do-not-query-localhost: no" "  access-control: 127.0.0.0/8 allow" \
    "  module-config: \"respip iterator\"" "  local-zone: \"test.\" nodefault" \
    "forward-zone:" "  name: \".\"" "  forward-addr: 127.0.0.1@$port" \
    "rpz:" "  name: \"bench.rpz.\"" "  zonefile: \"$work/bench.rpz\"" > "$work/unbound.conf"
  # Unbound's own footprint, without the zone.
  sed '/^rpz:/,$d' "$work/unbound.conf" > "$work/unbound-norpz.conf"
  start without; base=$pid
  unbound -d -c "$work/unbound-norpz.conf" > "$work/unbound.out" 2>&1 &
  pid=$!; pids+=("$pid")
  until_answers "$((port + 1))" www.pass0000.test 192.0.2.1 || { echo "bench: unbound did not start" >&2; cat "$work/unbound.out" >&2; exit 1; }
  ubm=$(rss); stop; pid=$base; stop
  declare -a u_load u_mem u_pass u_block
  for r in $(seq 1 "$rounds"); do
    start without
    base=$pid
    t0=$(date +%s%N)
    unbound -d -c "$work/unbound.conf" > "$work/unbound.out" 2>&1 &
    pid=$!; pids+=("$pid")
    until_answers "$uport" "$first_blocked" 192.0.2.80 || { echo "bench: unbound did not start" >&2; cat "$work/unbound.out" "$work/unbound.log" >&2; exit 1; }
    u_load+=("$(ms_since "$t0")")
    u_mem+=("$(rss)")
    saved=$port; port=$uport
    dig +short @127.0.0.1 -p "$port" www.pass0000.test >/dev/null
    u_pass+=("$(qps "$work/lists/passed.txt")")
    u_block+=("$(qps "$work/lists/blocked.txt")")
    port=$saved
    stop
    pid=$base; stop
    echo "round $r: unbound loaded in ${u_load[-1]} ms, RSS ${u_mem[-1]} kB; passed ${u_pass[-1]} q/s, blocked ${u_block[-1]} q/s" >&2
  done
  ul=$(median "${u_load[@]}"); um=$(median "${u_mem[@]}"); up=$(median "${u_pass[@]}"); ub=$(median "${u_block[@]}")
fi

printf '\nregblockd, %s entries, %s s runs, median of %s rounds, %s\n' "$entries" "$seconds" "$rounds" "$(nproc) cores"
printf '| measure | value | ratio to baseline |\n| --- | --- | --- |\n'
printf '| baseline (no regblock), passed names, q/s | %s | 1.00 |\n' "$bp"
printf '| regblock, passed names, q/s | %s | %.3f |\n' "$wp" "$(awk -v a="$wp" -v b="$bp" 'BEGIN {print a / b}')"
printf '| regblock, blocked names, q/s | %s | %.3f |\n' "$wb" "$(awk -v a="$wb" -v b="$bp" 'BEGIN {print a / b}')"
printf '| regblock, list hashed, passed names, q/s | %s | %.3f (%.3f of the plain list) |\n' "$hp" "$(awk -v a="$hp" -v b="$bp" 'BEGIN {print a / b}')" "$(awk -v a="$hp" -v b="$wp" 'BEGIN {print a / b}')"
printf '| regblock, list hashed, blocked names, q/s | %s | %.3f (%.3f of the plain list) |\n' "$hb" "$(awk -v a="$hb" -v b="$bp" 'BEGIN {print a / b}')" "$(awk -v a="$hb" -v b="$wb" 'BEGIN {print a / b}')"
printf '| regblock resident memory | %s MB (%s MB without a list) | |\n' "$((m / 1024))" "$((bm / 1024))"
printf '| reload under load, write to enforced (3 reloads) | %s ms | |\n' "$(IFS=' '; echo "${reload_times[*]}")"
printf '| queries lost during reloads (same run without reloads) | %s of %s (%s) | |\n' "$lost" "$sent" "$steady_lost"
printf '| p99 latency of a 1000 q/s probe, across reloads (steady) | %s ms (%s ms) | %.2f |\n' "$reload_p99" "$steady_p99" "$(awk -v a="$reload_p99" -v b="$steady_p99" 'BEGIN {print a / b}')"
printf '| peak resident memory across reloads (steady) | %s MB (%s MB) | %.2f |\n' "$((reload_peak / 1024))" "$((steady_rss / 1024))" "$(awk -v a="$reload_peak" -v b="$steady_rss" 'BEGIN {print a / b}')"
printf '| regblockd start to first blocked answer (load) | %s ms | |\n' "$ld"
if [ -n "${ul:-}" ]; then
  printf '\nthe same list as an RPZ zone: regblockd (list) and Unbound %s (RPZ, one thread), medians of %s rounds\n' "$(unbound -V | awk 'NR == 1 {print $2}')" "$rounds"
  printf '| measure | regblockd | Unbound | Unbound / regblockd |\n| --- | --- | --- | --- |\n'
  printf '| start to first blocked answer | %s ms | %s ms | %.1f |\n' "$ld" "$ul" "$(awk -v a="$ul" -v b="$ld" 'BEGIN {print a / b}')"
  printf '| resident memory | %s MB | %s MB | %.1f |\n' "$((m / 1024))" "$((um / 1024))" "$(awk -v a="$um" -v b="$m" 'BEGIN {print a / b}')"
  printf '| resident bytes per entry, above the process without a list | %s | %s | %.1f |\n' "$(( (m - bm) * 1024 / entries ))" "$(( (um - ubm) * 1024 / entries ))" \
    "$(awk -v a="$((um - ubm))" -v b="$((m - bm))" 'BEGIN {print a / b}')"
  printf '| passed names (cache hits), q/s | %s | %s | %.2f |\n' "$wp" "$up" "$(awk -v a="$up" -v b="$wp" 'BEGIN {print a / b}')"
  printf '| blocked names, q/s | %s | %s | %.2f |\n' "$wb" "$ub" "$(awk -v a="$ub" -v b="$wb" 'BEGIN {print a / b}')"
fi
