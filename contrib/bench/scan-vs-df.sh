#!/usr/bin/env bash
# Times `podman-btrfs-advise scan` against `podman system df -v` on a real Podman service
# holding N containers and N volumes (graphroot on a loop-mounted btrfs).
#
#   sudo contrib/bench/scan-vs-df.sh [--podman host|trixie] [N] [FILES] [RUNS]
#
# --podman host (default) runs the machine's podman (Debian 12: 4.3.1); trixie runs
# Debian 13's podman (5.4.2) from the root `contrib/dev.sh deps` makes ($PODFS_TRIXIE_ROOT),
# chrooted in a mount namespace of its own, as the system tests do.
# N (default 200): containers and volumes. FILES (default 1): 16 KiB files in each volume;
# `system df -v` and scan's size walk both grow with it, `scan --no-sizes` does not.
# RUNS (default 5): runs of each command; the table shows medians.
#
# Needs root, btrfs-progs and busybox-static (and podman + runc for host). Builds the
# release binary, or times $PODFS_BENCH_BIN when set. Changes nothing outside its temporary directory, which it removes on
# exit, and ends only the processes it started.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
PODMAN=host
if [ "${1:-}" = "--podman" ]; then
  PODMAN=${2:?--podman needs host or trixie}
  shift 2
fi
N=${1:-200}
FILES=${2:-1}
RUNS=${3:-5}
for v in "$N" "$FILES" "$RUNS"; do
  case $v in ''|*[!0-9]*|0) echo "N, FILES and RUNS are whole numbers above 0, not '$v' (see --help)" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")/../.."
REPO=$PWD
case $PODMAN in
  host) ;;
  trixie)
    ROOT=${PODFS_TRIXIE_ROOT:-/var/cache/podman-btrfs-advise/trixie-podman}
    if [ ! -f "$ROOT/.podfs-trixie-complete" ]; then
      echo "no Debian trixie root at $ROOT: run contrib/dev.sh deps as root" >&2
      exit 3
    fi
    ;;
  *) echo "--podman must be host or trixie, not $PODMAN" >&2; exit 2 ;;
esac
if [ -n "${PODFS_BENCH_BIN:-}" ]; then
  BIN=$PODFS_BENCH_BIN
else
  cargo build --release --quiet
  BIN=$REPO/target/release/podman-btrfs-advise
fi

D=$(mktemp -d /tmp/podfs-bench.XXXXXX)
. "$REPO/tests/common/podman-service.sh"
trap podman_service_cleanup EXIT
podman_service_start "$PODMAN" $((4 + N * FILES / 32768))G
mkdir -p "$D/rootfs/bin"
cp /bin/busybox "$D/rootfs/bin/" && ln -s busybox "$D/rootfs/bin/true"
tar -C "$D/rootfs" -cf "$D/bb.tar" .
P --url "$URL" import "$D/bb.tar" localhost/postgres:16 >/dev/null
P --url "$URL" tag localhost/postgres:16 localhost/app:1

# FILES distinct 16 KiB files, reflinked into every volume: real files to walk, written fast.
for ((f = 1; f <= FILES; f++)); do head -c 16384 /dev/urandom >"$D/mnt/template-f$f"; done
echo "creating $N volumes and $N containers on Podman $VERSION…" >&2
for i in $(seq "$N"); do
  if [ $((i % 4)) -eq 0 ]; then
    P --url "$URL" volume create --label io.podfs.class=database "vol$i" >/dev/null
    P --url "$URL" create --name "c$i" -v "vol$i:/var/lib/postgresql/data" localhost/postgres:16 true >/dev/null
  else
    P --url "$URL" volume create "vol$i" >/dev/null
    P --url "$URL" create --name "c$i" -v "vol$i:/data" localhost/app:1 true >/dev/null
  fi
  if [ "$FILES" -gt 0 ]; then cp --reflink=always "$D"/mnt/template-f* "$D/mnt/storage/volumes/vol$i/_data/"; fi
done
sync

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
measure() { for _ in $(seq "$RUNS"); do time_ms "$@"; done | median; }
scan_ms=$(measure "$BIN" scan --format json --url "$URL")
nosizes_ms=$(measure "$BIN" scan --no-sizes --format json --url "$URL")
df_ms=$(measure P --url "$URL" system df -v)
objects=$("$BIN" scan --format json --url "$URL" | grep -c '"class"' || true)

echo "Podman $VERSION ($PODMAN), N=$N containers and volumes, $FILES file(s) of 16 KiB per volume,"
echo "$objects classified objects, median of $RUNS runs, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-36s %10s %8s\n' command "median ms" "/ df"
row() { awk -v c="$1" -v a="$2" -v b="$df_ms" 'BEGIN { printf "%-36s %10d %8.2f\n", c, a, (b > 0 ? a / b : 0) }'; }
row "scan --format json" "$scan_ms"
row "scan --no-sizes --format json" "$nosizes_ms"
row "podman system df -v" "$df_ms"
