#!/usr/bin/env bash
# Build the release binary; print its path on stdout (cargo's output goes to stderr).
#
# docker runs the helper once per pull, push and build, so its start-up counts (README
# "Performance"). On x86_64/aarch64 Linux the binary is linked statically against musl:
# a static glibc program spends ~0.2 ms more in start-up and exit here (glibc probes the CPU's
# caches with `cpuid`, which traps in a VM, and tears down more at exit). The musl standard
# library comes from rustup (`rustup target add`, done here when missing); without it, the
# build falls back to a static glibc binary, which works the same, a little slower
# (DOCKER_CREDENTIAL_HUB_GLIBC=1 asks for it directly).
# glibc 2.34 and later, and musl, resolve hub.docker.com without NSS modules.
#
# Both are non-PIE (no relocations at start-up) and use software AES/SHA-256 (a few blocks per
# call; the CPU-feature probes cost more) and getrandom(2) directly. The target triple is
# passed explicitly so that RUSTFLAGS reach only the target crates: proc-macros must stay
# dynamic libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
name=docker-credential-hub
host=$(rustc -vV | sed -n 's/^host: //p')
dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
dir=${dir:-target}
flags='-C relocation-model=static --cfg aes_backend="soft" --cfg sha2_backend="soft" --cfg getrandom_backend="linux_getrandom"'

# Prints the musl triple for this host when its standard library is (or can be) installed.
musl_target() {
    local musl
    case "$host" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) musl=${host%-gnu}-musl ;;
    *) return 1 ;;
    esac
    [[ "${DOCKER_CREDENTIAL_HUB_GLIBC:-}" != 1 ]] || return 1
    command -v rustup >/dev/null || return 1
    if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
        echo "build-release: adding the Rust standard library for $musl (rustup target add)" >&2
        if ! rustup target add "$musl" >&2; then
            echo "build-release: could not add $musl; building a static glibc binary instead" >&2
            return 1
        fi
    fi
    echo "$musl"
}

case "$host" in
*-linux-gnu)
    if target=$(musl_target); then
        # ring compiles a little C; without a musl cross compiler the host's gcc serves (its
        # C uses no libc).
        cc_var="CC_${target//-/_}"
        if [[ -z "${!cc_var:-}" ]] && ! command -v "${target%%-*}-linux-musl-gcc" >/dev/null; then
            export "$cc_var=$(command -v musl-gcc || command -v gcc || echo cc)"
        fi
    else
        target=$host
        flags="-C target-feature=+crt-static $flags"
    fi
    # Linked by scripts/link-hot-first: the toolchain's lld, with the code `get` runs grouped.
    linker_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_LINKER"
    if [[ -z "${!linker_var:-}" ]]; then
        export "$linker_var=$PWD/scripts/link-hot-first"
        export DOCKER_CREDENTIAL_HUB_LLD_DIR="$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld"
        flags="$flags -C linker-flavor=gcc"
    fi
    RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo build --release --locked --target "$target" "$@" >&2
    echo "$dir/$target/release/$name"
    ;;
*)
    cargo build --release --locked "$@" >&2
    echo "$dir/release/$name"
    ;;
esac
