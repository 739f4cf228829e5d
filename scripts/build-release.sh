#!/usr/bin/env bash
# Build the release binary; print its path on stdout (cargo's output goes to stderr).
#
# On Linux with glibc the binary is linked statically (+crt-static). docker runs the helper
# once per pull, push and build, and a static binary skips the dynamic loader: about 0.25 ms
# of every invocation (see README "Performance"). glibc 2.34 and later have the "files" and
# "dns" resolvers built in, so the Hub login still resolves hub.docker.com. The target triple
# is passed explicitly so that RUSTFLAGS reach only the target crates: proc-macros must stay
# dynamic libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
name=docker-credential-hub
host=$(rustc -vV | sed -n 's/^host: //p')
dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
dir=${dir:-target}
case "$host" in
*-linux-gnu)
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static --cfg aes_backend=\"soft\" --cfg sha2_backend=\"soft\" --cfg getrandom_backend=\"linux_getrandom\"" \
        cargo build --release --locked --target "$host" "$@" >&2
    echo "$dir/$host/release/$name"
    ;;
*)
    cargo build --release --locked "$@" >&2
    echo "$dir/release/$name"
    ;;
esac
