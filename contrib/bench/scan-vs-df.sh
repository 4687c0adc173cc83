#!/usr/bin/env bash
# Times `podman-btrfs-advise scan --format json` against `podman system df -v` on a real
# Podman service holding N containers and N volumes (graphroot on a loop-mounted btrfs).
#
#   sudo contrib/bench/scan-vs-df.sh [N] [RUNS] [FILES]   (defaults: N=200, RUNS=5, FILES=1)
#
# FILES is the number of 16 KiB files in each volume: `system df -v` and scan's size walk
# both grow with it; `scan --no-sizes` does not.
#
# Needs root, podman, runc, btrfs-progs and busybox-static. Builds the release binary.
# Prints the median of RUNS runs of each command and their ratio; changes nothing
# outside its temporary directory, which it removes on exit.
set -euo pipefail
N=${1:-200}
RUNS=${2:-5}
FILES=${3:-1}
cd "$(dirname "$0")/../.."
cargo build --release --quiet
BIN=$PWD/target/release/podman-btrfs-advise

D=$(mktemp -d /tmp/podfs-bench.XXXXXX)
DEV=""
PID=""
cleanup() {
  set +e
  [ -n "$PID" ] && podman --url "unix://$D/podman.sock" rm -af -t 0 >/dev/null 2>&1
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  grep -o " $D[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  [ -n "$DEV" ] && losetup -d "$DEV"
  rm -rf "$D"
}
trap cleanup EXIT

truncate -s $((4 + N * FILES / 32768))G "$D/fs.img"
mkfs.btrfs -q "$D/fs.img" >/dev/null 2>&1
DEV=$(losetup --find --show "$D/fs.img")
mkdir -p "$D/mnt" "$D/run" "$D/tmp" "$D/rootfs/bin"
mount "$DEV" "$D/mnt"
btrfs subvolume create "$D/mnt/storage" >/dev/null
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$D/mnt/storage" "$D/run" >"$D/storage.conf"
printf '[containers]\ndefault_ulimits = []\n[engine]\ntmp_dir = "%s"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s"\nruntime = "runc"\n' \
  "$D/tmp" "$D/events.log" >"$D/containers.conf"
export CONTAINERS_STORAGE_CONF=$D/storage.conf CONTAINERS_CONF=$D/containers.conf
URL=unix://$D/podman.sock
podman system service --time=0 "$URL" >"$D/service.log" 2>&1 &
PID=$!
for _ in $(seq 100); do podman --url "$URL" version >/dev/null 2>&1 && break; sleep 0.1; done

cp /bin/busybox "$D/rootfs/bin/" && ln -s busybox "$D/rootfs/bin/true"
tar -C "$D/rootfs" -cf "$D/bb.tar" .
podman --url "$URL" import "$D/bb.tar" localhost/postgres:16 >/dev/null
podman --url "$URL" tag localhost/postgres:16 localhost/app:1

BLOB=$(head -c 12288 /dev/urandom | base64 -w0)  # 16 KiB of text, written by a builtin
echo "creating $N volumes and $N containers…" >&2
for i in $(seq "$N"); do
  if [ $((i % 4)) -eq 0 ]; then
    podman --url "$URL" volume create --label io.podfs.class=database "vol$i" >/dev/null
    podman --url "$URL" create --name "c$i" -v "vol$i:/var/lib/postgresql/data" localhost/postgres:16 true >/dev/null
  else
    podman --url "$URL" volume create "vol$i" >/dev/null
    podman --url "$URL" create --name "c$i" -v "vol$i:/data" localhost/app:1 true >/dev/null
  fi
  # Data in every volume so both tools have something to measure.
  for ((f = 1; f <= FILES; f++)); do
    printf '%s' "$BLOB" >"$D/mnt/storage/volumes/vol$i/_data/f$f"
  done
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
scan_ms=$(for _ in $(seq "$RUNS"); do time_ms "$BIN" scan --format json --url "$URL"; done | median)
nosizes_ms=$(for _ in $(seq "$RUNS"); do time_ms "$BIN" scan --no-sizes --format json --url "$URL"; done | median)
df_ms=$(for _ in $(seq "$RUNS"); do time_ms podman --url "$URL" system df -v; done | median)
objects=$("$BIN" scan --format json --url "$URL" | grep -c '"class"' || true)
echo "N=$N containers and volumes, $FILES files of 16 KiB per volume, $RUNS runs each (median), $(podman --version), $(nproc) cores"
echo "  podman-btrfs-advise scan --format json             ${scan_ms} ms  ($objects classified objects)"
echo "  podman-btrfs-advise scan --no-sizes --format json  ${nosizes_ms} ms"
echo "  podman system df -v                                ${df_ms} ms"
awk -v a="$scan_ms" -v n="$nosizes_ms" -v b="$df_ms" 'BEGIN { if (b > 0) printf "  ratio scan / df = %.2f, scan --no-sizes / df = %.2f\n", a / b, n / b }'
