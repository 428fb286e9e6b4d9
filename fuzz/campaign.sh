#!/usr/bin/env bash
# One fuzz campaign measured in CPU time, not wall time: the machine is
# shared, so the fuzzer runs at nice 19 and is stopped (SIGINT, so
# libFuzzer prints its final stats) once it has used CPU_SECONDS of CPU.
# Usage: fuzz/campaign.sh TARGET [CPU_SECONDS=600] [WALL_SECONDS_MAX=3600]
# Needs `cargo +nightly fuzz build -O` first. Log: fuzz/logs/TARGET.log.
set -u
cd "$(dirname "$0")"
target=$1
cpu_max=${2:-600}
wall_max=${3:-3600}
bin=target/x86_64-unknown-linux-gnu/release/$target
mkdir -p "corpus/$target" "artifacts/$target" logs
log=logs/$target.log
start=$(date +%s)
nice -n 19 "$bin" "corpus/$target" -artifact_prefix="artifacts/$target/" \
    -print_final_stats=1 -max_total_time="$wall_max" >"$log" 2>&1 &
pid=$!
tick=$(getconf CLK_TCK)
cpu=0
while kill -0 "$pid" 2>/dev/null; do
    read -r -a stat <"/proc/$pid/stat" || break
    cpu=$(( (stat[13] + stat[14]) / tick ))
    if (( cpu >= cpu_max )); then
        kill -INT "$pid"
        break
    fi
    sleep 2
done
wait "$pid"
rc=$?
wall=$(( $(date +%s) - start ))
echo "target=$target cpu_s=$cpu wall_s=$wall exit=$rc" | tee -a "$log"
