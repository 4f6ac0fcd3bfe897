#!/usr/bin/env bash
# Builds imgtool into out/bin as a NativeAOT binary (out/bin/imgtool): it starts in milliseconds, a JIT start in tens
# of them (README.md states the measured figures, once).
# Installs the native toolchain the AOT compiler links with when it is missing (fresh Debian machine, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
[ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "build.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

dotnet publish src/ImgTool.Cli -c Release -r linux-x64 -o out/bin -p:DebugType=none -p:StripSymbols=true --nologo -v quiet
rm -f out/bin/*.pdb out/bin/*.dbg
# The machine host that `imgtool boot` hands over to (src/ImgTool.Cli/MachineHandover.cs): the same commands on
# the JIT runtime, framework-dependent, ReadyToRun so that its own start stays short.
rm -rf out/bin/machine
dotnet publish src/ImgTool.MachineHost -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
  -o out/bin/machine -p:DebugType=none --nologo -v quiet
echo "imgtool built: $(pwd)/out/bin/imgtool (boot runs on $(pwd)/out/bin/machine/imgtool-machine)"
