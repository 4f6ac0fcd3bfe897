#!/usr/bin/env bash
# The main job on a sample: builds imgtool, makes a sparse sample disk, converts it and shows
# `imgtool info` of the result (and that the copy is identical).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install.sh
imgtool=out/bin/imgtool
work=out/sample
mkdir -p "$work"
rm -f "$work/sample.raw" "$work/converted.raw"

"$imgtool" create -f raw "$work/sample.raw" 256M
# Some data at a few places; the rest stays a hole.
for mib in 0 17 100 255; do
  head -c 1048576 /dev/urandom | dd of="$work/sample.raw" bs=1M seek="$mib" conv=notrunc status=none
done

"$imgtool" convert -p -f raw -O raw "$work/sample.raw" "$work/converted.raw"
"$imgtool" info "$work/converted.raw"
"$imgtool" map "$work/converted.raw"
"$imgtool" compare "$work/sample.raw" "$work/converted.raw"
