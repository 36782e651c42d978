#!/usr/bin/env bash
# Sets up everything giftrecon needs, builds it, and runs it on the default SQLite file
# (giftrecon.db in the directory you run this from). Open http://127.0.0.1:3000.
# Extra arguments go to `giftrecon serve`, e.g. scripts/run.sh --addr 127.0.0.1:8080.
set -euo pipefail
here=$(pwd)
cd "$(dirname "$0")/.."
repo=$(pwd)
scripts/install-deps.sh
export PATH="$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build --release
cd "$here"
exec "$repo/target/release/giftrecon" serve "$@"
