#!/usr/bin/env bash
# bench/shim/run.sh: the full measurement of bench/shim/RESULTS.md.
#
# Usage (root): bench/shim/run.sh
#   OUT=file        where the output goes (default shim/results/<UTC time>.txt)
#   PROFILE=DIR     instead of the matrix, record perf call-graph profiles of
#                   `netprov run` workloads (netstack bulk each way, RR, CPS,
#                   intercepted call; host CPS and call) into DIR/*.perf.data;
#                   read with: perf report -i F --comm netprov --children
#   NETPROV_BENCH_NETPROV=PATH   use a prebuilt netprov binary (experiments)
#   NETPROV_BENCH_REPS=N, NETPROV_BENCH_METRICS=bulk_up,bulk_down,rr,cps,call
#
# Three repetitions of every metric in every setup (about 4 minutes on
# 2 cores); the table has medians, min–max and ratios to the kernel veth
# client, all from this one run. Check `uptime` first: other load moves the
# absolute numbers, the ratios less so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:${PATH}"

if [[ -n "${PROFILE:-}" ]]; then
	mkdir -p "${PROFILE}"
	NETPROV_BENCH_PROFILE="$(realpath "${PROFILE}")" \
		go test ./shim -run '^$' -bench ShimProfile -benchtime=1x -timeout 10m -v
	exit 0
fi

mkdir -p shim/results
OUT="${OUT:-shim/results/$(date -u +%Y%m%d-%H%M).txt}"
{
	echo "# started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(uptime)"
	echo "# $(uname -r); $(go version); $(iperf3 --version | head -1); $(slirp4netns --version 2>/dev/null | head -1 || echo 'no slirp4netns')"
} | tee "${OUT}"
NETPROV_BENCH_FULL=1 go test ./shim -run '^$' -bench ShimMatrix -benchtime=1x -timeout 20m -v 2>&1 | tee -a "${OUT}"
echo "# finished $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(uptime)" | tee -a "${OUT}"
