#!/usr/bin/env bash
# Times migrate's copy and verify of 1 GB (4 files of 160 MiB, 4000 small files, a sparse
# 1 GiB file with 1 MiB of data) on a loop-mounted btrfs: into a NOCOW subvolume (every
# byte rewritten), into a copy-on-write subvolume with reflinks, and without them. Prints
# seconds, MB/s of data and the extra space each copy used (statvfs before and after).
# Verify's rate counts both trees it reads. Caches are dropped before each run, so the
# source is read cold.
#
#   sudo contrib/bench/migrate-copy.sh
#
# Needs root and btrfs-progs. Builds the release test binary. Everything lives in a
# temporary loop device that the test removes, also on failure.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "needs root (loop devices, mount)" >&2
  exit 3
fi
exec cargo test -q --release --test migrate_copy_system bench_copy_1gb -- --ignored --exact --nocapture
