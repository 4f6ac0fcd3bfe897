#!/usr/bin/env bash
# Runs the imgtool-vs-qemu benchmark (tools/bench). Arguments go to the bench; see README.md.
# A fresh Debian machine has only the .NET SDK, so the peers and helpers are installed when missing (as root):
# qemu-img and GNU time for every case; for the boot case qemu-system-i386, SeaBIOS and the tools that
# build the SYSLINUX fixture (tools/fixtures/make-syslinux-disk.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
[ -x /usr/bin/time ] || need+=(time)
command -v qemu-system-i386 >/dev/null 2>&1 || need+=(qemu-system-x86)
[ -e /usr/share/seabios/bios.bin ] || need+=(seabios)
command -v syslinux >/dev/null 2>&1 || need+=(syslinux)
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need+=(syslinux-common)
command -v mcopy >/dev/null 2>&1 || need+=(mtools)
command -v mkfs.fat >/dev/null 2>&1 || need+=(dosfstools)
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
# The inspect, ls-ext4 and cat-ext4 cases: their peers and the tools that make their inputs.
command -v sgdisk >/dev/null 2>&1 || need+=(gdisk)
command -v debugfs >/dev/null 2>&1 || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  echo "run.sh: installing ${need[*]}" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

# No cd: relative paths given to --work/--imgtool/--json stay relative to the caller's directory.
exec dotnet run -c Release --project "$here" -- "$@"
