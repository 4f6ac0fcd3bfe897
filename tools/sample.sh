#!/usr/bin/env bash
# The main job on a sample: builds imgtool, makes a small bootable disk (the Linux fixture: SYSLINUX, Debian's
# i386 kernel and a busybox initramfs whose /init hashes the disk it booted from), converts it to a compressed
# qcow2 and to a streamOptimized VMDK, shows `info` and `check` of each and `compare`s each with the source, then
# boots the VMDK on imgtool's own PC until the guest prints the SHA-256 of its disk, which must be the source's.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh

# The boot's firmware (the fixture script installs what it needs itself).
if [ ! -e /usr/share/seabios/bios.bin ]; then
  echo "sample.sh: installing seabios" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends seabios >/dev/null
fi

imgtool=out/bin/imgtool
work=out/sample
mkdir -p "$work"
rm -f "$work/linux.raw" "$work/linux.qcow2" "$work/linux.vmdk"
step() { printf '\n=== %s\n' "$*"; }

step "a bootable sample disk (tools/fixtures/make-linux-disk.sh)"
tools/fixtures/make-linux-disk.sh "$work/linux.raw" --bootloader syslinux
"$imgtool" info "$work/linux.raw"

step "convert: a compressed qcow2 and a streamOptimized VMDK"
"$imgtool" convert -c -f raw -O qcow2 "$work/linux.raw" "$work/linux.qcow2"
"$imgtool" convert -c -f raw -O vmdk -o subformat=streamOptimized "$work/linux.raw" "$work/linux.vmdk"
for format in qcow2 vmdk; do
  step "$format: info, check, compare with the source"
  "$imgtool" info "$work/linux.$format"
  "$imgtool" check "$work/linux.$format"
  "$imgtool" compare -f raw -F "$format" "$work/linux.raw" "$work/linux.$format"
done

step "boot the VMDK: its guest hashes the disk it sees"
disk_hash=$(sha256sum "$work/linux.raw" | cut -d' ' -f1)
echo "source image SHA-256: $disk_hash"
"$imgtool" boot "$work/linux.vmdk" --timeout 300s --serial-log "$work/boot-serial.log" \
  --expect "ImgTool Linux fixture: sha256 /dev/vda $disk_hash" --expect "ImgTool Linux fixture: done"
echo "what the guest printed (from $work/boot-serial.log):"
grep "ImgTool Linux fixture: sha256" "$work/boot-serial.log" | tr -d '\r'
