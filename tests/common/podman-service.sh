# Sourced by contrib/bench/scan-vs-df.sh and tests/fixtures/record-podman.sh: a throwaway
# Podman service in the caller's empty directory $D, its graphroot on a loop-mounted
# btrfs, run by the machine's podman (host, in a mount namespace of its own that hides
# the machine's Podman state, by host-namespace.sh) or by Debian 13's from the trixie root
# (trixie, chrooted in a mount namespace of its own by trixie-chroot.sh), as the system
# tests do. Its configuration never comes from the machine's /etc/containers.
#
#   podman_service_start host|trixie SIZE [DIR...]  # DIRs: also seen in the trixie root
#   P ARGS...                                      # that Podman's own client
#   podman_service_cleanup                          # call from the caller's EXIT trap
#
# Sets URL, VERSION and exports CONTAINERS_*; cleanup removes the containers and pods,
# ends exactly the processes it started, unmounts and removes $D.
DEV=""
PID=""
HOLDER=""
ENTER=()
# A command in the service's namespace (and, for trixie, in its root).
in_namespace() {
  nsenter -t "$HOLDER" -m "${ENTER[@]}" "$@"
}
P() {
  in_namespace podman "$@"
}
podman_namespace_members() {
  local ns p
  ns=$(readlink "/proc/$HOLDER/ns/mnt") || return 0
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" != "$HOLDER" ] && [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}
podman_service_cleanup() {
  set +e
  [ -n "$PID" ] && P --url "unix://$D/podman.sock" pod rm -af -t 0 >/dev/null 2>&1
  [ -n "$PID" ] && P --url "unix://$D/podman.sock" rm -af -t 0 >/dev/null 2>&1
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  # conmons named by the pid files under runroot, if any outlived the removal.
  for f in $(find "$D/run" -name conmon.pid 2>/dev/null); do
    c=$(cat "$f")
    grep -qa "$D/run" "/proc/$c/cmdline" 2>/dev/null && kill -KILL "$c"
  done
  if [ -n "$HOLDER" ]; then
    podman_namespace_members | xargs -r kill -KILL
    kill "$HOLDER" && wait "$HOLDER" 2>/dev/null
  fi
  grep -o " $D[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  [ -n "$DEV" ] && losetup -d "$DEV"
  rm -rf "$D"
}
podman_service_start() {
  local kind=$1 size=$2 root
  shift 2
  truncate -s "$size" "$D/fs.img"
  mkfs.btrfs -q "$D/fs.img" >/dev/null 2>&1
  DEV=$(losetup --find --show "$D/fs.img")
  mkdir -p "$D/mnt" "$D/run" "$D/tmp" "$D/networks"
  mount "$DEV" "$D/mnt"
  btrfs subvolume create "$D/mnt/storage" >/dev/null
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$D/mnt/storage" "$D/run" >"$D/storage.conf"
  printf '[containers]\ndefault_ulimits = []\n[network]\nnetwork_config_dir = "%s"\n[engine]\ntmp_dir = "%s"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s"\nruntime = "runc"\nlock_type = "file"\n' \
    "$D/networks" "$D/tmp" "$D/events.log" >"$D/containers.conf"
  : >"$D/registries.conf"
  export CONTAINERS_STORAGE_CONF=$D/storage.conf CONTAINERS_CONF=$D/containers.conf
  export CONTAINERS_REGISTRIES_CONF=$D/registries.conf PODMAN_IGNORE_CGROUPSV1_WARNING=1
  local here
  here=$(dirname "${BASH_SOURCE[0]}")
  if [ "$kind" = trixie ]; then
    root=${PODFS_TRIXIE_ROOT:-/var/cache/podman-btrfs-advise/trixie-podman}
    unshare --mount --propagation private sh "$here/trixie-chroot.sh" "$root" "$D" "$@" >"$D/holder.out" 2>&1 &
    ENTER=(-r -w)
  else
    unshare --mount --propagation private sh "$here/host-namespace.sh" >"$D/holder.out" 2>&1 &
  fi
  HOLDER=$!
  for _ in $(seq 100); do grep -q ready "$D/holder.out" && break; sleep 0.1; done
  grep -q ready "$D/holder.out" || { cat "$D/holder.out" >&2; exit 3; }
  URL=unix://$D/podman.sock
  # Started directly, not through P: a function in the background is a subshell, whose
  # pid is not the service's, and killing it would leave the service running.
  nsenter -t "$HOLDER" -m "${ENTER[@]}" podman system service --time=0 "$URL" >"$D/service.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do P --url "$URL" version >/dev/null 2>&1 && break; sleep 0.1; done
  VERSION=$(P --url "$URL" version --format '{{.Server.Version}}')
}
