#!/usr/bin/env bash
# Runs every check and test giftrecon has: formatting, lints (server and browser code), unit and
# integration tests on SQLite and PostgreSQL, and the browser tests in Chromium. Installs what is
# missing first. Ends with one line: "N passed, M failed".
#
# PostgreSQL: tests use the server at 127.0.0.1:5432 (user postgres, trust auth; override with
# GIFTRECON_TEST_PG=postgres://user@host:port). If it is unreachable the PostgreSQL tests are
# skipped with a loud notice, except under CI=true, where that is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

logs=target/test-logs
mkdir -p "$logs"
passed=0 failed=0 skipped=0 broken_steps=()

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
step_failed() { broken_steps+=("$1"); printf '\033[31m!! %s failed\033[0m\n' "$1"; }

# Adds cargo's "test result:" lines of a log to the totals.
count_cargo() {
  local totals p f s
  totals=$(awk '/^test result:/ {
      for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i
        if ($(i+1) ~ /^failed/) f += $i
        if ($(i+1) == "filtered") s += $i
      }
    } END { print p+0, f+0, s+0 }' "$1")
  read -r p f s <<<"$totals"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# Adds Playwright's closing "N passed" / "N failed" / "N skipped" lines to the totals.
count_playwright() {
  local p f s
  p=$(grep -E '^\s+[0-9]+ passed' "$1" | tail -n1 | awk '{print $1}')
  f=$(grep -E '^\s+[0-9]+ (failed|flaky|interrupted|did not run)' "$1" | awk '{s+=$1} END {print s+0}')
  s=$(grep -E '^\s+[0-9]+ skipped' "$1" | tail -n1 | awk '{print $1}')
  passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) skipped=$((skipped + ${s:-0}))
}

say "Installing what is missing"
if ! scripts/install-deps.sh --browser; then
  echo "0 passed, 1 failed"
  exit 1
fi

say "Formatting (cargo fmt --check)"
cargo fmt --all -- --check || step_failed "cargo fmt --check"

say "Lints: server and tests (clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings || step_failed "clippy (server)"

say "Lints: browser bundle (clippy -D warnings, wasm32)"
cargo clippy -p app --lib --features hydrate --target wasm32-unknown-unknown --locked -- -D warnings \
  || step_failed "clippy (wasm)"

say "PostgreSQL"
pg_url="${GIFTRECON_TEST_PG:-postgres://postgres@127.0.0.1:5432}"
pg_hostport=${pg_url#*@}; pg_host=${pg_hostport%%:*}; pg_port=${pg_hostport##*:}; pg_port=${pg_port%%/*}
pg_up() { pg_isready -q -h "$pg_host" -p "$pg_port" -t 5; }
if ! pg_up && [ "${CI:-}" = "true" ] && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  sleep 2
fi
skip_pg=()
if pg_up; then
  echo "PostgreSQL is up at $pg_host:$pg_port: every test runs on SQLite and PostgreSQL."
  # The browser tests run the demo on it too.
  export GIFTRECON_E2E_PG="$pg_url"
elif [ "${CI:-}" = "true" ]; then
  step_failed "PostgreSQL unreachable at $pg_host:$pg_port (required under CI)"
  skip_pg=(--skip ::postgres)
else
  cat <<BANNER

  ******************************************************************************
  *  SKIPPING every PostgreSQL test: no server answers at $pg_host:$pg_port.
  *  Start one (pg_ctlcluster 15 main start) or set GIFTRECON_TEST_PG.
  *  Skipped tests are reported as skipped, never as passed.
  ******************************************************************************

BANNER
  skip_pg=(--skip ::postgres)
fi

say "Unit and integration tests (cargo test)"
cargo test --workspace --locked -- "${skip_pg[@]}" 2>&1 | tee "$logs/cargo-test.log"
[ "${PIPESTATUS[0]}" = 0 ] || step_failed "cargo test"
count_cargo "$logs/cargo-test.log"

say "Browser bundle and server (cargo leptos build)"
if cargo leptos build 2>&1 | tee "$logs/leptos-build.log"; [ "${PIPESTATUS[0]}" = 0 ]; then
  say "Browser tests (Playwright, Chromium)"
  (cd end2end && npx playwright test) 2>&1 | tee "$logs/playwright.log"
  [ "${PIPESTATUS[0]}" = 0 ] || step_failed "playwright"
  count_playwright "$logs/playwright.log"
else
  step_failed "cargo leptos build (browser tests not run)"
fi

say "Summary"
if [ ${#broken_steps[@]} -gt 0 ]; then
  printf 'failed steps:\n'; printf '  - %s\n' "${broken_steps[@]}"
  # A failed step that is not itself a test still fails the run.
  [ "$failed" -gt 0 ] || failed=${#broken_steps[@]}
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ ${#broken_steps[@]} -eq 0 ]
