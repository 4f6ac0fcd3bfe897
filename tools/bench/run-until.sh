#!/usr/bin/env bash
# Runs a command (qemu-system-i386 with -serial stdio) until TEXT appears on its stdout, then stops it
# with SIGTERM and exits 0; exits 1 when the command ends or TIMEOUT_SECONDS pass first.
# Usage: run-until.sh TEXT TIMEOUT_SECONDS COMMAND [ARG...]
#
# This is the qemu side of the bench's boot case: qemu has no "stop when the guest prints X", and
# waiting for a timeout would time the timeout. The output is matched byte by byte rather than by a
# line-oriented tool (grep waits for the end of the line): the bench stops qemu at the same byte as
# imgtool boot --expect stops its own machine. Bash reads a pipe one byte per read(2); a boot prints a
# few hundred bytes before the banner, so the matching costs well under a millisecond.
set -uo pipefail
text=${1:?usage: run-until.sh TEXT TIMEOUT_SECONDS COMMAND [ARG...]}
timeout_seconds=${2:?usage: run-until.sh TEXT TIMEOUT_SECONDS COMMAND [ARG...]}
shift 2

exec 3< <(exec "$@")
pid=$!
window=""
found=1
deadline=$((SECONDS + timeout_seconds))
# -N 1: one character whatever it is (newlines included); -t: never wait past the deadline.
while [ "$SECONDS" -lt "$deadline" ] && IFS= read -r -N 1 -t "$timeout_seconds" -u 3 char; do
  window=$window$char
  if [ "${#window}" -gt "${#text}" ]; then window=${window:1}; fi
  if [ "$window" = "$text" ]; then
    found=0
    break
  fi
done

kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ "$found" -ne 0 ]; then
  echo "run-until.sh: '$text' did not appear within ${timeout_seconds} s" >&2
fi
exit "$found"
