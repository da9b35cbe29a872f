#!/usr/bin/env bash
# Durability benchmark, rzk vs Apache ZooKeeper 3.8 (see bench/durability.py and
# docs/BENCH-durability.md). Needs what scripts/test.sh installs (zookeeper, .venv).
#   bench/durability.sh [--znodes 1000000] [--seconds 10] [--kinds rzk,zookeeper]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rzk
cargo build --release --locked -p rzk-storage --example gen_tree
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/durability.py --markdown "$@"
