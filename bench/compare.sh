#!/usr/bin/env bash
# rzk against Apache ZooKeeper 3.8, side by side on this machine: builds rzk (release), makes
# a venv with matplotlib for the chart (bench/.venv), then runs bench/compare.py, which writes
# docs/BENCH.md, docs/bench-latency.png and README.md's benchmark table.
# Arguments go to compare.py (--help lists them). Needs Debian's zookeeper package and java.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "compare.sh: Apache ZooKeeper is not installed (apt-get install zookeeper)" >&2
    exit 2
fi
cargo build --release --locked -p rzk
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -q --disable-pip-version-check matplotlib
fi
exec bench/.venv/bin/python bench/compare.py "$@"
