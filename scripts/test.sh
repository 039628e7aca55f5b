#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace
# (unit, integration, doc tests, and each criterion bench once in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --locked --doc
# Each benchmark runs once (criterion's test mode) so the benches cannot rot.
cargo test --workspace --locked --benches
