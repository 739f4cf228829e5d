#!/usr/bin/env bash
# Regenerate scripts/hot-functions.txt, the functions a `get` runs (see scripts/link-hot-first),
# after changing the code on that path. Builds an unstripped release binary in its own target
# directory (a full build the first time) and profiles it with callgrind on a private
# gnome-keyring. Installs nothing; names the packages it needs when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need valgrind valgrind
need c++filt binutils
need dbus-daemon dbus-daemon
need gnome-keyring-daemon gnome-keyring
need secret-tool libsecret-tools
need python3 python3
if ((${#missing[@]})); then
  echo "hot-functions: missing tools; install them with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

helper=$(CARGO_TARGET_DIR=target/hot-functions CARGO_PROFILE_RELEASE_STRIP=false ./scripts/build-release.sh --quiet)
exec python3 bench/hot_functions.py "$helper"
