#!/bin/sh
# Builds ferry-vcsim (main.go beside this script) into $1 (default .build/ferry-vcsim) with
# Debian's golang-go and golang-github-vmware-govmomi-dev, offline, in GOPATH mode.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../../.build/ferry-vcsim}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/ferry-vcsim"
cp "$here/main.go" "$work/src/ferry-vcsim/"
cd "$work/src/ferry-vcsim"
# go needs a build cache; without HOME (a bare CI environment) keep it in the temporary tree.
[ -n "${GOCACHE:-}" ] || [ -n "${HOME:-}" ] || export GOCACHE="$work/cache"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" \
    go build -o "$out" .
echo "$out"
