#!/usr/bin/env bash
# Benchmark docker-credential-hub against the helpers it replaces, side by side, interleaved.
# Starts its own private dbus-daemon and gnome-keyring-daemon; installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need dbus-daemon dbus-daemon
need gnome-keyring-daemon gnome-keyring
need secret-tool libsecret-tools
need docker-credential-secretservice golang-docker-credential-helpers
need python3 python3
need /usr/bin/time time
if ((${#missing[@]})); then
  echo "bench: missing tools; install them with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

helper=$(./scripts/build-release.sh --quiet)
exec python3 bench/bench.py "$helper" "$@"
