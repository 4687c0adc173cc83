#!/usr/bin/env bash
# Times `podman-btrfs-advise check` on a disko.nix with N subvolumes (default 500),
# with Nix evaluation and without (--no-eval).
#
#   contrib/bench/check-500.sh [N] [RUNS]      (defaults: N=500, RUNS=7)
#
# Needs nix-instantiate for the evaluated figure. Builds the release binary. Prints the
# median of RUNS runs of each.
set -euo pipefail
N=${1:-500}
RUNS=${2:-7}
cd "$(dirname "$0")/../.."
cargo build --release --quiet
BIN=$PWD/target/release/podman-btrfs-advise
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

{
  echo '{'
  echo '  disko.devices.disk.main = {'
  echo '    type = "disk";'
  echo '    device = "/dev/vda";'
  echo '    content = {'
  echo '      type = "gpt";'
  echo '      partitions.root = {'
  echo '        size = "100%";'
  echo '        content = {'
  echo '          type = "btrfs";'
  echo '          subvolumes = {'
  for ((i = 1; i <= N; i++)); do
    echo "            \"@sv$i\" = { mountpoint = \"/srv/sv$i\"; mountOptions = [ \"noatime\" \"compress=zstd:1\" ]; };"
  done
  echo '          };'
  echo '          postCreateHook = '"''"
  echo '            m=$(mktemp -d)'
  echo '            mount -t btrfs -o subvol=/ "$device" "$m"'
  for ((i = 1; i <= N; i += 10)); do echo "            chattr +C \"\$m/@sv$i\""; done
  echo '            umount "$m"'
  echo "          '';"
  echo '        };'
  echo '      };'
  echo '    };'
  echo '  };'
  echo '}'
} >"$D/disko.nix"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null || true
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
eval_ms=$(for _ in $(seq "$RUNS"); do time_ms "$BIN" check --disko "$D/disko.nix"; done | median)
static_ms=$(for _ in $(seq "$RUNS"); do time_ms "$BIN" check --no-eval --disko "$D/disko.nix"; done | median)
found=$("$BIN" check --format json --disko "$D/disko.nix" | grep -c '"code"' || true)
echo "check of a $N-subvolume disko.nix ($(wc -c <"$D/disko.nix") bytes), $RUNS runs each (median), $(nix-instantiate --version 2>/dev/null || echo 'no nix')"
echo "  with nix-instantiate evaluation  ${eval_ms} ms  ($found diagnostics)"
echo "  --no-eval (static read)          ${static_ms} ms"
