# Run as `unshare --mount --propagation private sh trixie-chroot.sh ROOT DIR...`: makes
# ROOT the root of this new mount namespace and holds it with a sleep; commands join it
# with `nsenter -t PID -m -r -w`. ROOT is bound onto itself (pivot_root needs a mount
# point) read-only, so the cached root never changes; Podman's own state goes to tmpfs;
# every DIR (sockets, graphroot, volumes) appears at its host path. pivot_root rather than
# chroot: the kernel refuses a user namespace (rootless Podman) to a chrooted process.
# Prints "ready" once the namespace has its new root.
set -eu
root=$1
shift
mount --bind "$root" "$root"
mkdir -p "$root/var/lib/containers"
# Shared paths under /tmp get their mount points on the tmpfs below; others need them here.
for p in "$@"; do case $p in /tmp/*) ;; *) mkdir -p "$root$p" ;; esac; done
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
for t in /tmp /run /var/tmp /var/lib/containers; do mount -t tmpfs -o mode=1777 tmpfs "$root$t"; done
for p in "$@"; do
  mkdir -p "$root$p"
  mount --rbind "$p" "$root$p"
done
mkdir "$root/run/.host"
cd "$root"
pivot_root . run/.host
# The host's tree is not needed inside, and must not be reachable from there.
umount -l /run/.host
rmdir /run/.host
# "ready" only with the new root: nsenter -r takes the root the holder has at that moment.
echo ready
exec sleep infinity >/dev/null
