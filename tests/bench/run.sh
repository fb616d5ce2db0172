#!/usr/bin/env bash
# Full-size benchmarks with their targets. Run from the repository root after
# the test command has set up .venv:   bash tests/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
export PYTHONPATH=.
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
"$PY" -m tests.bench.bench_quota_status --server "$@"
"$PY" -m tests.bench.bench_startup
"$PY" -m tests.bench.bench_ingest
"$PY" -m tests.bench.bench_planner
"$PY" -m tests.bench.bench_dashboard
"$PY" -m tests.bench.bench_coco_export
"$PY" -m tests.bench.bench_viewer
"$PY" -m tests.bench.bench_datasets
"$PY" -m tests.bench.bench_eval
"$PY" -m tests.bench.bench_audit
"$PY" -m tests.bench.bench_backup
"$PY" -m tests.bench.bench_train
"$PY" -m tests.bench.bench_stations
