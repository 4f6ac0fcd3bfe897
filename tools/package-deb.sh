#!/usr/bin/env bash
# Builds a Debian package of imgtool (out/deb/imgtool_VERSION_amd64.deb) with dpkg-deb, so a fleet installs it the
# usual way: the NativeAOT binary in /usr/lib/imgtool with /usr/bin/imgtool linking to it, the machine host that
# `imgtool boot` hands over to published self-contained (a machine without the .NET runtime still boots images on
# the translating JIT), the bash and zsh completions and the man page that imgtool generates from its commands.
# Usage: tools/package-deb.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
case ${1:-} in
  --no-build) build=0 ;;
  "") ;;
  *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac
command -v dpkg-deb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg >/dev/null; }
if [ "$build" -eq 1 ] || [ ! -x out/bin/imgtool ]; then
  tools/build.sh
fi

version=$(out/bin/imgtool --version | sed -n 's/^imgtool version //p')
[ -n "$version" ] || { echo "package-deb.sh: could not read imgtool's version" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
lib=$root/usr/lib/imgtool

mkdir -p "$lib" "$root/usr/bin" "$root/DEBIAN" "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/man/man1" "$root/usr/share/doc/imgtool"
cp out/bin/imgtool "$lib/imgtool"
dotnet publish src/ImgTool.MachineHost -c Release -r linux-x64 --self-contained true -p:PublishReadyToRun=true \
  -o "$lib/machine" -p:DebugType=none --nologo -v quiet
ln -s ../lib/imgtool/imgtool "$root/usr/bin/imgtool"
"$lib/imgtool" completion bash > "$root/usr/share/bash-completion/completions/imgtool"
"$lib/imgtool" completion zsh > "$root/usr/share/zsh/vendor-completions/_imgtool"
"$lib/imgtool" man | gzip -9n > "$root/usr/share/man/man1/imgtool.1.gz"
cat > "$root/usr/share/doc/imgtool/copyright" <<'TEXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: imgtool
Files: *
Copyright: the ImgTool developers
License: see the project's repository
TEXT

installed_kib=$(du -sk "$root/usr" | cut -f1)
cat > "$root/DEBIAN/control" <<TEXT
Package: imgtool
Version: $version
Architecture: amd64
Maintainer: ImgTool developers <imgtool@localhost>
Installed-Size: $installed_kib
Depends: libc6 (>= 2.31)
Recommends: seabios
Section: admin
Priority: optional
Description: disk image toolkit compatible with qemu-img, with a boot verifier
 imgtool creates, inspects, converts, checks and repairs disk images (raw, qcow2,
 QED, VMDK, VHD, VHDX, VDI, LUKS) with qemu-img's syntax and JSON output, looks
 inside them (partitions, file systems, files), and boots an image on its own x86
 PC through SeaBIOS to prove the converted image still works.
TEXT

mkdir -p out/deb
package=out/deb/imgtool_${version}_amd64.deb
dpkg-deb --root-owner-group --build "$root" "$package" >/dev/null
echo "package built: $(pwd)/$package"
