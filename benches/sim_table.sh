#!/usr/bin/env bash
# The simulator table of BENCHMARKS.md ("cost flat in n"): one markdown row
# per run of the release `sim` example, costs divided by the validator count.
# The Byzantine column is the weight the run really gave them (whole nodes).
# Usage: benches/sim_table.sh "VALIDATORS:TXS ..." "BYZANTINE:STRATEGY ..." [extra sim flags]
# e.g.   benches/sim_table.sh "4:1000 20:1000 100:300" "0:split 0.2:split 0.33:split 0.2:silent 0.33:silent"
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example sim >&2
sim=target/release/examples/sim
sizes=$1 faults=$2
shift 2
echo "| validators | Byzantine | txs | finalized | latency p50/p99 ms | messages / tx / node | bytes / tx / node | signatures / tx / node | safety violations | wall s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for size in $sizes; do
    n=${size%%:*} txs=${size##*:}
    for fault in $faults; do
        share=${fault%%:*} strategy=${fault##*:}
        out=$($sim --validators "$n" --txs "$txs" --conflicts 0.1 --rate 1000 \
            --byzantine "$share" --strategy "$strategy" --seed 7 "$@")
        awk -v n="$n" -v strategy="$strategy" -v txs="$txs" '
            /^seed/ { split($0, a, "Byzantine \\("); split(a[2], b, " "); weight = b[1] }
            /^txs:/ { for (i = NF - 1; i >= 1; i--) if ($(i + 1) == "finalized;") fin = $i }
            /finality latency/ { split($0, a, "finality latency p50/p99: "); split(a[2], b, " "); lat = b[1] }
            /^per finalized tx:/ { msgs = $4; bytes = $6; sigs = $8 }
            /safety violations:/ { split($0, a, "safety violations: "); split(a[2], b, " "); safety = b[1] }
            /^wall time:/ { wall = $3 }
            END {
                byz = weight == 0 ? "0" : sprintf("%g %% %s", weight, strategy)
                printf "| %d | %s | %d | %s | %s | %.1f | %.1f kB | %.2f | %s | %s |\n",
                    n, byz, txs, fin, lat, msgs / n, bytes / n / 1000, sigs / n, safety, wall
            }' <<<"$out"
    done
done
