#!/usr/bin/env bash
# regblock report on a fleet's month of receipts.
#
#   bench/report.sh [RESOLVERS] [DAYS] [DIR]     (defaults: 10000 30, a temporary directory)
#
# Writes a receipts store of RESOLVERS resolvers over DAYS days, as the
# receiver stores a quiet resolver's (a receipt an hour, one after each
# new version), and a publisher's directory with a version a day
# (bench/genreceipts: about 8 GB for 10 000 resolvers over 30 days; give
# DIR to keep it between runs). Then prints the time and peak memory of
# reading the whole store once (cat, the floor any reader pays) and of
# regblock report writing the page, the JSON and the CSV files, and the
# ratio of the two times.
set -euo pipefail
cd "$(dirname "$0")/.."
resolvers=${1:-10000}
days=${2:-30}
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=${3:-$work/data}

go build -o "$work/regblock" ./cmd/regblock
if [ ! -d "$data/receipts" ]; then
  echo "bench: writing $resolvers resolvers' receipts over $days days to $data" >&2
  go run ./bench/genreceipts -resolvers "$resolvers" -days "$days" -dir "$data"
fi
du -sh "$data/receipts" | awk '{print "store: " $1}'

measure() { # NAME COMMAND...: prints NAME, seconds and peak RSS in MB; keeps the seconds
  /usr/bin/time -f "%e %M" -o "$work/time" "${@:2}" >/dev/null
  read -r secs kb <"$work/time"
  printf '%-14s %8.1f s %8d MB\n' "$1" "$secs" $((kb / 1024))
  eval "$1_secs=$secs"
}
measure read find "$data/receipts" -name '*.jsonl' -exec cat {} +
measure report "$work/regblock" report -receipts "$data/receipts" -lists "$data/lists" \
  -o "$work/report.html" -json "$work/report.json" -csv "$work/csv"
awk -v r="$report_secs" -v c="$read_secs" 'BEGIN { printf "report/read    %8.2f\n", r / c }'
