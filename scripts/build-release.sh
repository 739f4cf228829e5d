#!/usr/bin/env bash
# Build the release binary; print its path on stdout (cargo's output goes to stderr).
#
# The release build is `cargo build --release --locked` with the profile in Cargo.toml. On
# x86_64 and aarch64 Linux it targets musl, so the binary is static (static-pie: ASLR covers
# its own image) and starts faster than a glibc one (README "Performance"); rustup adds the
# musl standard library when it is missing, and without it the build is for the host. Where
# lld is installed it links (`-C link-arg=-fuse-ld=lld`). rustc links aarch64 musl as a
# fixed-address executable; .cargo/config.toml links it through scripts/link-static-pie,
# as the release workflow does. A musl build that is not position-independent is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
name=docker-credential-hub
host=$(rustc -vV | sed -n 's/^host: //p')
dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
dir=${dir:-target}

# Prints the musl triple for this host when its standard library is (or can be) installed.
musl_target() {
    local musl
    case "$host" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) musl=${host%-gnu}-musl ;;
    *) return 1 ;;
    esac
    command -v rustup >/dev/null || return 1
    if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
        echo "build-release: adding the Rust standard library for $musl (rustup target add)" >&2
        rustup target add "$musl" >&2 || return 1
    fi
    echo "$musl"
}

if target=$(musl_target); then
    # ring compiles a little C; without a musl cross compiler the host's gcc serves (its C
    # uses no libc).
    cc_var="CC_${target//-/_}"
    if [[ -z "${!cc_var:-}" ]] && ! command -v "${target%%-*}-linux-musl-gcc" >/dev/null; then
        export "$cc_var=$(command -v musl-gcc || command -v gcc || echo cc)"
    fi
else
    target=$host
fi
flags=
if command -v ld.lld >/dev/null; then
    flags="-C link-arg=-fuse-ld=lld"
fi
# The triple is passed explicitly so that RUSTFLAGS reach only the target's crates.
RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo build --release --locked --target "$target" "$@" >&2
binary="$dir/$target/release/$name"
if [[ $target == *-musl ]]; then
    # The ELF type (bytes 16-17, little-endian on both targets): 3 is ET_DYN (static-pie).
    elf_type=$(od -An -tu2 -j16 -N2 "$binary" | tr -d ' ')
    if [[ $elf_type != 3 ]]; then
        echo "build-release: $binary is not position-independent (ELF type $elf_type, not 3)" >&2
        exit 1
    fi
fi
echo "$binary"
