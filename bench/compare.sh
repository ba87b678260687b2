#!/usr/bin/env bash
# Runs the benchmarks COUNT times, each round a fresh process running every
# implementation one after the other (so implementations are interleaved in
# time and share the machine's noise), then prints ours/netstack per
# benchmark and metric with cmd/compare.
#
# Environment (defaults in brackets):
#   COUNT      rounds [3]            BENCHTIME  go test -benchtime [2s]
#   BENCH      -bench regexp [.]     TAGS       build tags [none]
#   BASE       denominator [netstack]
#   TEST       numerator [ours]; TEST=netstack-self runs an A/A check
#   OUT        where the raw results go [a temporary file]
# Example: COUNT=5 BENCH=Bulk ./compare.sh
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-2s}
BENCH=${BENCH:-.}
TAGS=${TAGS:-}
BASE=${BASE:-netstack}
TEST=${TEST:-ours}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
OUT=${OUT:-$work/results.txt}
: >"$OUT"

if [ "$TEST" = netstack-self ] || [ "$BASE" = netstack-self ]; then
	export NETPROV_BENCH_SELF=1
fi

go test -tags "$TAGS" -c -o "$work/bench.test" .
go build -o "$work/compare" ./cmd/compare
for round in $(seq "$COUNT"); do
	echo "round $round/$COUNT" >&2
	"$work/bench.test" -test.run '^$' -test.bench "$BENCH" \
		-test.benchtime "$BENCHTIME" -test.count 1 | tee -a "$OUT" >&2
done
"$work/compare" -base "$BASE" -test "$TEST" "$OUT"
