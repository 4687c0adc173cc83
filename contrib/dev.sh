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
# when cargo is missing. The system tests also run against Debian 13's Podman 5: `deps`
# debootstraps a Debian trixie root with podman once into $PODFS_TRIXIE_ROOT
# (default /var/cache/podman-btrfs-advise/trixie-podman) and reuses it afterwards.
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
  [debootstrap]=debootstrap
  [unshare]=util-linux
  [nsenter]=util-linux
  [sfdisk]=fdisk
  [partx]=util-linux
  [mkswap]=util-linux
  [mkfs.ext4]=e2fsprogs
  [newuidmap]=uidmap
  [man]=man-db
  [btrbk]=btrbk
  [qemu-aarch64]=qemu-user
  [qemu-x86_64]=qemu-user
)

# Debian 13's Podman (5.4.2) for the tests, run in a namespace of its own by tests/common/podman.rs. Outside
# the repository so a fresh clone reuses it; made in a side directory and renamed at the
# end, with a marker naming its packages, so a half-done root is never taken for a whole one.
export PODFS_TRIXIE_ROOT=${PODFS_TRIXIE_ROOT:-/var/cache/podman-btrfs-advise/trixie-podman}
TRIXIE_PACKAGES=podman,runc,conmon,netavark,catatonit
TRIXIE_MARKER=.podfs-trixie-complete

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
  trixie_root
  ensure_rust
}

trixie_root() {
  local root=$PODFS_TRIXIE_ROOT
  if [ "$(cat "$root/$TRIXIE_MARKER" 2>/dev/null)" = "$TRIXIE_PACKAGES" ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v debootstrap >/dev/null; then
    say "no Debian trixie root at $root (run as root with debootstrap installed to make it)"
    return
  fi
  local tmp=$root.tmp
  say "debootstrapping Debian trixie with $TRIXIE_PACKAGES into $root (once, about a minute)"
  # --one-file-system: a killed debootstrap may have left /proc mounted inside.
  rm -rf --one-file-system "$tmp"
  mkdir -p "$tmp"
  if ! debootstrap --variant=minbase --include="$TRIXIE_PACKAGES" trixie "$tmp" \
    http://deb.debian.org/debian >"$tmp.log" 2>&1; then
    tail -n 20 "$tmp.log" >&2
    say "debootstrap failed; full log in $tmp.log"
    return 1
  fi
  rm -f "$tmp"/var/cache/apt/archives/*.deb "$tmp.log"
  echo "$TRIXIE_PACKAGES" >"$tmp/$TRIXIE_MARKER"
  rm -rf --one-file-system "$root"
  mv "$tmp" "$root"
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
  say "cargo doc (broken links are errors)"
  RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps
  say "cargo test (system tests required: PODFS_REQUIRE_SYSTEM_TESTS=1)"
  # Skips for a missing tool or missing root become failures here.
  # A hung test must fail CI with a message, not run into its time limit.
  PODFS_REQUIRE_SYSTEM_TESTS=1 timeout --foreground 40m cargo test --no-fail-fast
}

case "${1:-}" in
  demo) shift; demo "$@" ;;
  test) run_tests ;;
  deps) deps ;;
  *) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
