#!/usr/bin/env bash
# Runs the imgtool-vs-qemu-img benchmark (tools/bench). Arguments go to the bench; see README.md.
# A fresh Debian machine has only the .NET SDK, so qemu-img and GNU time are installed when missing (as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "run.sh: installing ${need[*]}" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-utils time
fi

# No cd: relative paths given to --work/--imgtool/--json stay relative to the caller's directory.
exec dotnet run -c Release --project "$here" -- "$@"
