#!/usr/bin/env bash
# The man page and shell completions, generated from ferry's argument parser (issue 10):
#   docs/man/ferry.1          swift-argument-parser's generate-manual (one page, every command)
#   completions/ferry.bash    ferry --generate-completion-script bash   (→ /usr/share/bash-completion/completions/ferry)
#   completions/_ferry        ferry --generate-completion-script zsh    (→ a directory on $fpath)
#   completions/ferry.fish    ferry --generate-completion-script fish   (→ ~/.config/fish/completions/)
#
#   Scripts/generate-docs.sh            regenerate them (after changing a command's options or help)
#   Scripts/generate-docs.sh --check    fail if the committed ones are stale (CI)
#
# FERRY=path uses an existing ferry binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = "--check" ] && check=1
# A fixed date keeps the page reproducible; bump it with a release.
date=2026-12-01

if [ -z "${FERRY:-}" ]; then
  swift build --product ferry > /dev/null
  FERRY="$(swift build --show-bin-path)/ferry"
fi
swift build --product generate-manual > /dev/null
generate_manual="$(swift build --show-bin-path)/generate-manual"

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
mkdir -p "$new/docs/man" "$new/completions"
"$generate_manual" "$FERRY" --date "$date" --section 1 --output-directory "$new/docs/man"
"$FERRY" --generate-completion-script bash > "$new/completions/ferry.bash"
"$FERRY" --generate-completion-script zsh > "$new/completions/_ferry"
"$FERRY" --generate-completion-script fish > "$new/completions/ferry.fish"

if [ $check = 1 ]; then
  stale=0
  for f in docs/man/ferry.1 completions/ferry.bash completions/_ferry completions/ferry.fish; do
    if ! cmp -s "$new/$f" "$f"; then
      echo "generate-docs: $f is stale (run Scripts/generate-docs.sh and commit it)" >&2
      diff -u "$f" "$new/$f" | head -20 >&2 || true
      stale=1
    fi
  done
  exit $stale
fi
mkdir -p docs/man completions
cp "$new/docs/man/ferry.1" docs/man/ferry.1
cp "$new/completions/"* completions/
echo "generate-docs: wrote docs/man/ferry.1, completions/ferry.bash, completions/_ferry, completions/ferry.fish"
