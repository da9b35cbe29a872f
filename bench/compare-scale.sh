#!/usr/bin/env bash
# rzk against Apache ZooKeeper 3.8 at scale, side by side on this machine: builds rzk
# (release), then runs bench/compare_scale.py, which writes docs/BENCH-scale.md and README.md's
# scale table. Arguments go to compare_scale.py (--help lists them). Needs Debian's zookeeper
# package and java, and RAM: ZooKeeper gets -Xmx8000m for 5,000,000 znodes, rzk alone holds
# 20,000,000. The file-descriptor limit is raised for 100,000 sessions (root may go past the
# hard limit).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "compare-scale.sh: Apache ZooKeeper is not installed (apt-get install zookeeper)" >&2
    exit 2
fi
cargo build --release --locked -p rzk
exec python3 bench/compare_scale.py "$@"
