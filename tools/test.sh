#!/usr/bin/env bash
# The test command: installs what the tests need (qemu-utils for the interop tests), runs every
# test project, and prints the totals as "N passed, N failed". Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v qemu-io >/dev/null 2>&1 || need+=(qemu-utils)
command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)
# The real-world sample tests: their samples come bzip2-compressed (tools/fixtures/get-qemu-samples.sh).
command -v bzip2 >/dev/null 2>&1 || need+=(bzip2)
# The boot tests: firmware, the fixture tools, and QEMU to compare transcripts with.
[ -e /usr/share/seabios/bios.bin ] || need+=(seabios)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need+=(syslinux-common)
command -v syslinux >/dev/null 2>&1 || need+=(syslinux)
command -v mcopy >/dev/null 2>&1 || need+=(mtools)
command -v mkfs.fat >/dev/null 2>&1 || need+=(dosfstools)
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
command -v qemu-system-i386 >/dev/null 2>&1 || need+=(qemu-system-x86)
# The host-CPU differential tests build tools/cpu-harness/alu as a 32-bit program (gcc -m32) and
# tools/cpu-harness/x87 natively, and run them on the host's CPU and FPU.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -e /usr/lib32/crt1.o ] || [ -e /usr/lib/i386-linux-gnu/crt1.o ] || need+=(gcc-multilib)
# The Linux fixture (tools/fixtures/make-linux-disk.sh; it also fetches Debian's i386 kernel and busybox
# with apt-get download into a private apt state): its initramfs and the GRUB variant.
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
[ -e /usr/lib/grub/i386-pc/boot.img ] || need+=(grub-pc-bin)
# imgtool inspect / ls / cat (issue 16): the disks its tests compare with blkid, sfdisk and debugfs are made by
# Debian's own partitioning and mkfs tools.
command -v sgdisk >/dev/null 2>&1 || need+=(gdisk)
command -v mkfs.xfs >/dev/null 2>&1 || need+=(xfsprogs)
command -v mkfs.btrfs >/dev/null 2>&1 || need+=(btrfs-progs)
command -v mkfs.exfat >/dev/null 2>&1 || need+=(exfatprogs)
command -v mkntfs >/dev/null 2>&1 || need+=(ntfs-3g)
command -v cryptsetup >/dev/null 2>&1 || need+=(cryptsetup-bin)
command -v pvcreate >/dev/null 2>&1 || need+=(lvm2)
command -v genisoimage >/dev/null 2>&1 || need+=(genisoimage)
command -v blkid >/dev/null 2>&1 || need+=(util-linux)
# tools/install.sh's man page is rendered by man in its test.
command -v man >/dev/null 2>&1 || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || {
    echo "test.sh: could not install ${need[*]}; the interop tests need them" >&2
    exit 1
  }
fi

# The published binaries (NativeAOT imgtool and its JIT machine host): the handover tests run them.
if [ ! -x out/bin/imgtool ] || [ ! -x out/bin/machine/imgtool-machine ]; then
  tools/build.sh >/dev/null || { echo "test.sh: tools/build.sh failed" >&2; exit 1; }
fi

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
# The Linux boot tests (Category LinuxBoot, issue 10) take about a minute each: CI runs the raw fixture
# with both bootloaders, the whole set runs with IMGTOOL_LINUX_BOOT=1 (or with the caller's own --filter).
filter=()
if [ "${IMGTOOL_LINUX_BOOT:-0}" != 1 ] && ! printf '%s\n' "$@" | grep -q -- '^--filter'; then
  echo "test.sh: of Category=LinuxBoot only the raw fixture boots (IMGTOOL_LINUX_BOOT=1 runs them all)" >&2
  filter=(--filter "Category!=LinuxBoot|FullyQualifiedName~Raw_fixture_boots_to_user_space")
fi
dotnet test ImgTool.sln --nologo --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" "${filter[@]}" "$@"
status=$?

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done

if [ "$passed" -eq 0 ] && [ "$status" -ne 0 ]; then
  failed=$((failed > 0 ? failed : 1)) # the build failed: nothing ran
fi
# The names of failed tests, just above the totals, so the tail of a CI log says what broke.
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>' "$trx" | sed -n 's/.* testName="\([^"]*\)".*/FAILED: \1/p'
done
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
