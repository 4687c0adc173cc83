#!/usr/bin/env bash
# Idle cost of `podman-btrfs-advise serve`: RSS, CPU time and wake-ups over an idle period
# with every part running (plugin socket, Podman events watcher, inotify watcher).
#
#   sudo contrib/bench/serve-idle.sh [SECONDS]        (default 60)
#
# Needs root, btrfs-progs, podman and curl. Builds the release binary. Wake-ups are the
# daemon's context switches (voluntary + involuntary, all threads): an idle daemon with
# no periodic timers has none.
set -euo pipefail
idle=${1:-60}
cd "$(dirname "$0")/../.."
cargo build --release --quiet
binary=$PWD/target/release/podman-btrfs-advise

work=$(mktemp -d /tmp/podfs-idle.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    umount -l "$work/mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

truncate -s 1G "$work/img"
mkfs.btrfs -q "$work/img"
mkdir -p "$work/mnt" "$work/run" "$work/tmp"
mount -o loop "$work/img" "$work/mnt"
btrfs -q subvolume create "$work/mnt/storage"
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/mnt/storage"
runroot = "$work/run"
EOF
cat >"$work/containers.conf" <<EOF
[engine]
tmp_dir = "$work/tmp"
events_logger = "file"
events_logfile_path = "$work/events.log"
cgroup_manager = "cgroupfs"

[engine.volume_plugins]
podfs = "$work/podfs.sock"
EOF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
podman system service --time=0 "unix://$work/podman.sock" 2>"$work/podman.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/podman.sock" ] && break; sleep 0.1; done

"$binary" serve --socket "$work/podfs.sock" --root "$work/mnt/podfs" --url "unix://$work/podman.sock" \
    --storage-conf "$work/storage.conf" --containers-conf "$work/containers.conf" 2>"$work/serve.log" &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do [ -S "$work/podfs.sock" ] && break; sleep 0.1; done

# Some work first, so the idle period follows real activity.
podman --url "unix://$work/podman.sock" volume create --driver podfs --opt class=database pg >/dev/null
podman --url "unix://$work/podman.sock" volume create --label io.podfs.class=cache cache >/dev/null
curl -s --unix-socket "$work/podfs.sock" -X POST http://p/VolumeDriver.List >/dev/null
# Blocking-pool threads used for checks exit after 10 s of idleness.
sleep 12

ticks=$(getconf CLK_TCK)
sample() { # prints: cpu_ticks switches threads rss_kib
    local stat switches=0 f
    stat=$(cut -d')' -f2- "/proc/$daemon/stat")
    for f in /proc/"$daemon"/task/*/status; do
        switches=$((switches + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$f")))
    done
    echo "$(echo "$stat" | awk '{print $12 + $13}') $switches $(ls /proc/"$daemon"/task | wc -l) \
$(awk '/VmRSS/ {print $2}' "/proc/$daemon/status")"
}
read -r cpu0 sw0 threads0 rss0 < <(sample)
sleep "$idle"
read -r cpu1 sw1 threads1 rss1 < <(sample)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")

echo "idle period:            ${idle} s"
echo "CPU time while idle:    $(((cpu1 - cpu0) * 1000 / ticks)) ms"
echo "wake-ups while idle:    $((sw1 - sw0)) context switches"
echo "threads:                $threads0 -> $threads1"
echo "RSS:                    $((rss0 / 1024)).$(((rss0 % 1024) * 10 / 1024)) MiB -> $((rss1 / 1024)).$(((rss1 % 1024) * 10 / 1024)) MiB (peak $((hwm / 1024)).$(((hwm % 1024) * 10 / 1024)) MiB)"
grep -c 'finding' "$work/serve.log" | sed 's/^/findings logged:        /'
