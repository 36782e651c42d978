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
giftrecon="$repo/target/release/giftrecon"
# Nobody can sign in until a user exists: on a fresh database, make an admin and say how to
# sign in (the password is random and shown only here).
if [ -z "$("$giftrecon" user list | tail -n +2)" ]; then
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$password" | "$giftrecon" user add admin --role admin --password-stdin >/dev/null
  printf '\n  First run: sign in at http://127.0.0.1:3000 as "admin" with password %s\n' "$password"
  printf '  (add your own users on the Users page; this is shown only once).\n\n'
fi
exec "$giftrecon" serve "$@"
