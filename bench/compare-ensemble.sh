#!/usr/bin/env bash
# 3-server rzk against 3-server Apache ZooKeeper 3.8 on this machine: throughput, p50/p99
# and the time from SIGKILL of the leader to the first acknowledged write. Builds rzk
# (release), then runs bench/ensemble.py, which writes docs/BENCH-ensemble.md.
# Arguments go to ensemble.py (--help lists them), e.g.
#   bench/compare-ensemble.sh                                   # both, default settings
#   bench/compare-ensemble.sh --kinds zookeeper --duration 5    # ZooKeeper only
# Needs Debian's zookeeper package, java, and the .venv scripts/test.sh makes (kazoo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "compare-ensemble.sh: Apache ZooKeeper is not installed (apt-get install zookeeper)" >&2
    exit 2
fi
cargo build --release --locked -p rzk
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/ensemble.py "$@"
