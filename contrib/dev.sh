#!/usr/bin/env bash
# Developer entry point for podman-btrfs-advise.
#
#   contrib/dev.sh demo [DIR]   build and plan the embedded homelab example into DIR
#                               (default ./homelab-plan); no Podman needed
#   contrib/dev.sh test         install what the tests need (btrfs-progs, btrfs-compsize,
#                               nix-bin, podman, …), then run formatting, lints
#                               and every test, system tests included (needs root)
#   contrib/dev.sh deps         only install what the tests need
#
# On Debian as root it installs missing packages with apt-get, and Rust with rustup
# when cargo is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

# Debian packages the system tests use, by the command that shows each is there.
declare -A PACKAGES=(
  [mkfs.btrfs]=btrfs-progs
  [compsize]=btrfs-compsize
  [nix-instantiate]=nix-bin
  [lsattr]=e2fsprogs
  [losetup]=mount
  [podman]=podman
  [runc]=runc
  [busybox]=busybox-static
  [setpriv]=util-linux
  [cc]=gcc
  [curl]=curl
  [systemd-analyze]=systemd
  [man]=man-db
)

ensure_rust() {
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null; then
    say "installing Rust with rustup (cargo not found)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

deps() {
  local missing=()
  for cmd in "${!PACKAGES[@]}"; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ] || missing+=("${PACKAGES[$cmd]}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      say "missing packages: ${missing[*]} (run as root to install them)"
    elif command -v apt-get >/dev/null; then
      say "installing ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      say "missing packages: ${missing[*]} (install them with your package manager)"
    fi
  fi
  ensure_rust
}

demo() {
  ensure_rust
  local out=${1:-./homelab-plan}
  cargo build --release --quiet
  ./target/release/podman-btrfs-advise plan --example homelab --out "$out" --force
  say "open $out/PLAN.md for the reasons behind every decision"
}

run_tests() {
  deps
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "cargo clippy"
  cargo clippy --quiet --all-targets -- -D warnings
  say "cargo test (system tests required: PODFS_REQUIRE_SYSTEM_TESTS=1)"
  # Skips for a missing tool or missing root become failures here.
  # A hung test must fail CI with a message, not run into its time limit.
  PODFS_REQUIRE_SYSTEM_TESTS=1 timeout --foreground 40m cargo test --no-fail-fast
}

case "${1:-}" in
  demo) shift; demo "$@" ;;
  test) run_tests ;;
  deps) deps ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
