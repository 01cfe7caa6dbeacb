#!/usr/bin/env bash
# Runs a command with a time limit, and when the limit is hit leaves the evidence a hang needs
# before it stops the command: the process tree, and every thread's stack (gdb) of every process
# in it. CI runs the test suite under it, so that a hang is a red run with stacks in its log
# instead of a run cut at CI's own limit with nothing to read.
#
#   Scripts/watchdog.sh SECONDS COMMAND [ARG…]
#
# Exit status: COMMAND's, or 124 when the limit was hit.
set -uo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS COMMAND [ARG…]" >&2
  exit 2
fi
limit=$1
shift

# The command leads its own process group, so that everything it started can be found and stopped.
setsid "$@" &
leader=$!
start=$SECONDS

descendants() {
  local pid=$1 child
  for child in $(pgrep -P "$pid" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

while kill -0 "$leader" 2>/dev/null; do
  if (( SECONDS - start >= limit )); then
    {
      echo
      echo "watchdog: '$*' still running after ${limit} s: process tree and thread stacks follow"
      ps -o pid,ppid,etime,stat,args --forest -g "$leader" 2>/dev/null || ps -ef --forest
      for pid in "$leader" $(descendants "$leader"); do
        echo
        echo "watchdog: stacks of $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
        if command -v gdb >/dev/null; then
          timeout 120 gdb -p "$pid" -batch -ex "thread apply all bt" 2>&1 | grep -v '^\[New LWP' | head -2000
        else
          for task in /proc/"$pid"/task/*; do
            echo "thread ${task##*/}: $(cat "$task/comm" 2>/dev/null) wchan=$(cat "$task/wchan" 2>/dev/null)"
          done
        fi
      done
      echo "watchdog: stopping '$*'"
    } >&2
    kill -TERM -- "-$leader" 2>/dev/null
    sleep 5
    kill -KILL -- "-$leader" 2>/dev/null
    wait "$leader" 2>/dev/null
    exit 124
  fi
  sleep 5
done
wait "$leader"
