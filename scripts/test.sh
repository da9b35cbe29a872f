#!/usr/bin/env bash
# The project's test command: sets up what it needs on a fresh Debian machine (Apache
# ZooKeeper 3.8 and its clients from Debian, a Python venv with kazoo), builds the
# workspace, runs the Rust tests, then the Python suite against real ZooKeeper clients.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in zookeeper zookeeper-bin libzookeeper-mt-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "== installing ${need_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import kazoo, pytest, pytest_timeout" 2>/dev/null; then
    echo "== creating .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r tests/requirements.txt
fi

echo "== cargo build"
cargo build --workspace --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== python suite (real ZooKeeper clients against rzk and Apache ZooKeeper)"
RZK_BIN="$PWD/target/debug/rzk" .venv/bin/python -m pytest tests/ -v -p no:cacheprovider --timeout=600
