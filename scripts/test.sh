#!/usr/bin/env bash
# The project's test command. On a fresh Debian machine it sets up what it needs
# (Apache ZooKeeper 3.8 and its clients from Debian, chromium and chromedriver for the
# console's browser tests, a Python venv with kazoo),
# builds the workspace, runs the Rust tests, then the Python suite in tests/:
# real ZooKeeper clients (kazoo, zkCli.sh, the C client) against rzk and Apache
# ZooKeeper, and the differential test rzk vs Apache ZooKeeper.
#
# Environment: RZK_BIN (default target/debug/rzk); DIFF_SEEDS, DIFF_OPS,
# DIFF_AGAINST (tests/test_differential.py); PYTEST_ARGS (extra pytest
# arguments, e.g. "-k fourletter"); SKIP_CARGO=1 (Python suite only);
# PYTEST_TIMEOUT (overall limit for the Python suite, seconds, default 2400);
# RZK_FEATURES (cargo features, default rzk/kerberos).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages -----------------------------------------------------------
need_pkgs=()
# Kerberos: libkrb5-dev and libclang-dev build the `kerberos` feature (GSSAPI through MIT
# krb5, bindings made by bindgen); krb5-kdc, krb5-admin-server and krb5-user run the
# throw-away KDC of tests/test_kerberos.py; python's `kerberos` module builds on libkrb5-dev
# and python3-dev.
# Curator (tests/test_curator.py): its jars, and a JDK to compile tests/java/CuratorCheck.java.
for p in zookeeper zookeeper-bin libzookeeper-mt-dev expect libservlet-api-java openssl default-jre-headless \
    libkrb5-dev libclang-dev pkg-config krb5-kdc krb5-admin-server krb5-user python3-dev chromium chromium-driver \
    openjdk-17-jdk-headless libcurator-client-java libcurator-framework-java libcurator-recipes-java libslf4j-java; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_pkgs+=(python3-venv)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "== installing ${need_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# --- python venv ---------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt

# --- rust ----------------------------------------------------------------------
# Kerberos (SASL GSSAPI) is a cargo feature: it builds against the system's MIT krb5.
RZK_FEATURES="${RZK_FEATURES:-rzk/kerberos}"
if [ "${SKIP_CARGO:-0}" != 1 ]; then
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy (warnings are errors)"
    cargo clippy --workspace --all-targets --locked --features "$RZK_FEATURES" -- -D warnings
    echo "== cargo build"
    cargo build --workspace --locked --features "$RZK_FEATURES"
    echo "== cargo test"
    cargo test --workspace --locked --features "$RZK_FEATURES"
    echo "== ZAB simulator (release): seeded ensembles with faults, every checker after every step"
    cargo test --release --locked -p rzk-sim -- --nocapture
fi

# --- python suite --------------------------------------------------------------
echo "== python suite (real ZooKeeper clients against rzk and Apache ZooKeeper)"
export RZK_BIN="${RZK_BIN:-$PWD/target/debug/rzk}"
# shellcheck disable=SC2086
timeout --kill-after=30 "${PYTEST_TIMEOUT:-2400}" \
    .venv/bin/python -m pytest tests/ -v --durations=25 ${PYTEST_ARGS:-}
