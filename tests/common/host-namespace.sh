# Run as `unshare --mount --propagation private sh host-namespace.sh`: a mount namespace in
# which the machine's own Podman state and configuration are out of sight and out of
# reach, for the machine's Podman that the tests start. Podman writes its blob-info cache
# to /var/lib/containers/cache and its run state to /run whatever storage.conf and
# containers.conf say, and reads /etc/containers/policy.json; here each is a tmpfs of this
# namespace (a policy that accepts the test's imported images). Prints "ready".
set -eu
mount -t tmpfs -o mode=0755 tmpfs /etc/containers
printf '%s\n' '{"default": [{"type": "insecureAcceptAnything"}]}' > /etc/containers/policy.json
: > /etc/containers/registries.conf
mount -t tmpfs -o mode=0755 tmpfs /run
if [ -d /var/lib/containers ]; then
  mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers
else
  # Never create it on the machine: hide /var/lib instead and make it in the tmpfs.
  mount -t tmpfs -o mode=0755 tmpfs /var/lib
  mkdir -m 0700 /var/lib/containers
fi
echo ready
exec sleep infinity >/dev/null
