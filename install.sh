#!/usr/bin/env bash
# Build docker-credential-hub and install it into ${PREFIX:-$HOME/.local}/bin.
#   ./install.sh              build (cargo build --release --locked) and install; safe to re-run
#   ./install.sh --uninstall  remove the installed binary
set -euo pipefail

name=docker-credential-hub
bindir="${PREFIX:-$HOME/.local}/bin"
target="$bindir/$name"

usage() {
    echo "usage: $0 [--uninstall]"
    echo "installs $name into \${PREFIX:-\$HOME/.local}/bin (now: $bindir)"
}

on_path() {
    case ":${PATH:-}:" in
    *":$bindir:"* | *":${bindir%/}:"*) return 0 ;;
    *) return 1 ;;
    esac
}

case "${1:-}" in
"") ;;
--uninstall)
    if [[ -e "$target" ]]; then
        rm -f -- "$target"
        echo "removed $target"
    else
        echo "$target is not installed; nothing to do"
    fi
    echo "if ~/.docker/config.json (or \$DOCKER_CONFIG/config.json) says \"credsStore\": \"hub\", remove that line, or docker commands will fail to find the helper"
    exit 0
    ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    usage >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")"
command -v cargo >/dev/null || {
    echo "cargo not found: install Rust from https://rustup.rs and run $0 again" >&2
    exit 1
}

cargo build --release --locked
built="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
built="${built:-target}/release/$name"
[[ -x "$built" ]] || {
    echo "build finished but $built is missing" >&2
    exit 1
}

mkdir -p -- "$bindir"
# install(1) replaces the file in one step, so re-running over an installed copy is safe.
install -m 0755 -- "$built" "$target"
echo "installed $("$target" version) as $target"

if on_path; then
    echo "$bindir is on your PATH: docker will find $name"
else
    echo "$bindir is NOT on your PATH; docker finds credential helpers through PATH, so add it, e.g.:"
    echo "    echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.profile && . ~/.profile"
fi

config="${DOCKER_CONFIG:-$HOME/.docker}/config.json"
echo
echo "To make docker use it, put this line in $config (keep your other keys):"
echo '    "credsStore": "hub"'
echo "e.g. a config.json with nothing else in it:  { \"credsStore\": \"hub\" }"
echo "Then log in again (docker login REGISTRY) so the credentials move into the keychain."
