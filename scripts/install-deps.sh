#!/usr/bin/env bash
# Installs what building and testing giftrecon needs and a fresh Debian machine lacks.
# Idempotent: anything already present at the right version is left alone.
#   scripts/install-deps.sh            build tools (wasm target, cargo-leptos, wasm-bindgen, wasm-opt)
#   scripts/install-deps.sh --browser  also Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
with_browser=false
[ "${1:-}" = "--browser" ] && with_browser=true

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_missing=()
command -v cc >/dev/null || apt_missing+=(build-essential)
command -v pkg-config >/dev/null || apt_missing+=(pkg-config)
command -v node >/dev/null || apt_missing+=(nodejs npm)
command -v pg_isready >/dev/null || apt_missing+=(postgresql-client)
if $with_browser && [ ! -x /usr/bin/chromium ]; then apt_missing+=(chromium); fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "apt: installing ${apt_missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "cargo: installing cargo-leptos $CARGO_LEPTOS_VERSION (about 11 minutes the first time)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
fi

# The CLI must be exactly the wasm-bindgen version in Cargo.lock, or the bundle will not load.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  say "cargo: installing wasm-bindgen-cli $wbg_version"
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

# npm: Playwright for the browser tests and binaryen's wasm-opt for release builds.
if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ] \
  || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "npm: installing end2end packages"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi
