#!/usr/bin/env bash
# Builds the Rust example packages (examples/upgrades/*-rs) reproducibly
# with Debian's Rust toolchain and writes each .wasm beside its source,
# where it is committed (a machine with only Go runs them).
#
#   scripts/build-rust-guests.sh           build and write the .wasm files
#   scripts/build-rust-guests.sh --check   build and compare with the committed
#                                          files (exit 1 if any differs)
#
# The toolchain is Debian 12's: rustc 1.63 (/usr/bin/rustc), cargo,
# libstd-rust-dev-wasm32 (targets wasm32-unknown-unknown and wasm32-wasi),
# lld-14 (the wasm linker), wasi-libc and binaryen (wasm-opt). Missing
# packages are installed with apt-get (needs root). Exit code 3 means the
# toolchain cannot be had on this machine (no apt-get, not root, or the
# packages are not available); nothing was built.
#
# Reproducible: a fixed toolchain named by absolute path (another rustc or
# cargo first on PATH is ignored), no user cargo config (a private
# CARGO_HOME), a fresh target directory, Cargo.lock with --locked
# --offline, fixed codegen (Cargo.toml [profile.release]: opt-level 3, LTO,
# one codegen unit, panic=abort, stripped), source paths remapped, and a
# deterministic wasm-opt pass. The same sources give the same bytes on any
# machine with these package versions.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ws=$repo/examples/upgrades
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# name:target:artifact (artifact path under target/<target>/release/)
guests=(
  "add-feature-flag-rs:wasm32-unknown-unknown:add_feature_flag_rs.wasm"
  "command-feature-flag-rs:wasm32-wasi:command-feature-flag-rs.wasm"
)
packages=(rustc cargo libstd-rust-dev-wasm32 lld-14 wasi-libc binaryen)
RUSTC=/usr/bin/rustc
CARGO=/usr/bin/cargo
WASM_OPT=/usr/bin/wasm-opt
# The versions the committed .wasm files were built with.
want_rustc="rustc 1.63.0"
want_wasm_opt="wasm-opt version 108"

have_toolchain() {
  [ -x "$RUSTC" ] && [ -x "$CARGO" ] && [ -x "$WASM_OPT" ] && [ -x /usr/bin/rust-lld ] || return 1
  local sysroot
  sysroot=$("$RUSTC" --print sysroot) || return 1
  [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ] && [ -d "$sysroot/lib/rustlib/wasm32-wasi/lib" ]
}

if ! have_toolchain; then
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "build-rust-guests: Debian's Rust toolchain is missing and cannot be installed here (needs apt-get as root): ${packages[*]}" >&2
    exit 3
  fi
  echo "build-rust-guests: installing ${packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=600 -o APT::Install-Recommends=false -y -qq)
  if ! { apt-get "${apt_opts[@]}" install "${packages[@]}" >/dev/null ||
         { apt-get -o DPkg::Lock::Timeout=600 -qq update >/dev/null &&
           apt-get "${apt_opts[@]}" install "${packages[@]}" >/dev/null; }; }; then
    echo "build-rust-guests: apt-get could not install ${packages[*]}" >&2
    exit 3
  fi
  if ! have_toolchain; then
    echo "build-rust-guests: installed ${packages[*]} but the toolchain is still incomplete" >&2
    exit 3
  fi
fi

got_rustc=$("$RUSTC" --version)
got_wasm_opt=$("$WASM_OPT" --version)
echo "build-rust-guests: $got_rustc ($RUSTC), $("$CARGO" --version), $got_wasm_opt" >&2
if [ "$got_rustc" != "$want_rustc" ] || [ "$got_wasm_opt" != "$want_wasm_opt" ]; then
  echo "build-rust-guests: warning: the committed .wasm files were built with $want_rustc and $want_wasm_opt; other versions give other bytes" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A clean environment for cargo: no user config, no inherited flags.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_BUILD_TARGET CARGO_TARGET_DIR RUSTUP_TOOLCHAIN
export CARGO_HOME=$tmp/cargo-home RUSTC CARGO
export CARGO_TARGET_DIR=$tmp/target
export SOURCE_DATE_EPOCH=0
# bulk-memory: memcpy/memset become memory.copy/memory.fill (one
# instruction, charged by size by the fuel meter) instead of byte loops.
export CARGO_ENCODED_RUSTFLAGS=$(printf '%s\x1f%s\x1f%s' \
  "-Ctarget-feature=+bulk-memory" \
  "--remap-path-prefix=$ws=/synapse-p2p/examples/upgrades" \
  "--remap-path-prefix=$tmp=/build")
mkdir -p "$CARGO_HOME"

status=0
for g in "${guests[@]}"; do
  IFS=: read -r name target artifact <<<"$g"
  (cd "$ws" && "$CARGO" build --quiet --release --locked --offline -p "$name" --target "$target")
  built=$CARGO_TARGET_DIR/$target/release/$artifact
  out=$tmp/$name.wasm
  # -O3 for speed; strip the producers section (toolchain names) and any
  # debug info; no names section.
  "$WASM_OPT" -O3 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --strip-debug --strip-producers "$built" -o "$out"
  dest=$ws/$name/$name.wasm
  size=$(stat -c %s "$out")
  sum=$(sha256sum "$out" | cut -d' ' -f1)
  if [ "$check" = 1 ]; then
    if cmp -s "$out" "$dest"; then
      echo "build-rust-guests: $name.wasm: identical to the committed file ($size bytes, sha256 $sum)"
    else
      echo "build-rust-guests: $name.wasm differs from the committed $dest (rebuilt: $size bytes, sha256 $sum; committed: $(sha256sum "$dest" 2>/dev/null | cut -d' ' -f1))" >&2
      status=1
    fi
  else
    cp "$out" "$dest"
    echo "build-rust-guests: wrote $dest ($size bytes, sha256 $sum)"
  fi
done
exit $status
