#!/usr/bin/env bash
# Build docker-credential-hub and install it into ${PREFIX:-$HOME/.local}/bin.
#   ./install.sh                 build (scripts/build-release.sh: cargo build --release --locked), install, then run
#                                `docker-credential-hub configure`; safe to re-run
#   ./install.sh --no-configure  build and install only; leave docker's config.json alone
#   ./install.sh --uninstall     `docker-credential-hub configure --undo`, then remove the binary
set -euo pipefail

name=docker-credential-hub
bindir="${PREFIX:-$HOME/.local}/bin"
target="$bindir/$name"

usage() {
    echo "usage: $0 [--no-configure | --uninstall]"
    echo "installs $name into \${PREFIX:-\$HOME/.local}/bin (now: $bindir)"
}

on_path() {
    case ":${PATH:-}:" in
    *":$bindir:"* | *":${bindir%/}:"*) return 0 ;;
    *) return 1 ;;
    esac
}

configure=1
case "${1:-}" in
"") ;;
--no-configure) configure=0 ;;
--uninstall)
    if [[ -x "$target" ]]; then
        # Switch docker back first: a config that names a missing helper breaks docker.
        if ! "$target" configure --undo; then
            echo "configure --undo failed (see above); $target was left in place so docker still finds it; fix the problem and run $0 --uninstall again" >&2
            exit 1
        fi
        # The keychain entries outlive the binary: say which, while it can still list them.
        left="$("$target" list 2>/dev/null || true)"
        if [[ -n "$left" && "$left" != "{}" ]]; then
            echo "these credentials stay in the keychain (registry: username): $left"
            echo "to erase them: docker logout REGISTRY before uninstalling, or afterwards"
            echo "    secret-tool clear service docker-credential-hub   (Secret Service; kernel keyutils forgets them at reboot)"
        fi
        rm -f -- "$target"
        echo "removed $target"
    else
        echo "$target is not installed; nothing to do"
        echo "if ~/.docker/config.json (or \$DOCKER_CONFIG/config.json) says \"credsStore\": \"hub\", remove that line, or docker commands will fail to find the helper"
    fi
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

built="$(./scripts/build-release.sh)"
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

echo
if [[ $configure == 0 ]]; then
    echo "--no-configure: docker's config.json was left alone; to switch docker over later, run:"
    echo "    $name configure --dry-run   # shows what would move"
    echo "    $name configure"
elif ! on_path; then
    echo "not running '$name configure' yet: docker could not find $name until $bindir is on PATH."
    echo "After adding it (see above), run:  $name configure"
elif ! "$target" configure; then
    echo "configure failed (see above); docker's config.json was not changed and $target stays installed." >&2
    echo "Fix the problem and run:  $target configure   (or re-run $0)" >&2
    exit 1
fi
