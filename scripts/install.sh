#!/bin/sh
# Installs virtmem for C programs under PREFIX:
#
#   PREFIX/lib/libvirtmem.a, PREFIX/lib/libvirtmem.so
#   PREFIX/include/virtmem.h, PREFIX/include/windows.h
#   PREFIX/lib/pkgconfig/virtmem.pc
#
# Usage: scripts/install.sh PREFIX          e.g. scripts/install.sh /usr/local
#                                                 scripts/install.sh "$HOME/.local"
#
# It first builds the libraries with `cargo build --release -p virtmem` (honouring
# CARGO_TARGET_DIR and cargo's other settings). Environment:
#   VIRTMEM_LIB_DIR=DIR  install libvirtmem.a/.so from DIR instead of building them
#   DESTDIR=DIR          stage the files under DIR/PREFIX (for packaging); virtmem.pc still
#                        says PREFIX
#   CARGO=PATH           the cargo to run (default: cargo)
#
# Afterwards (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig unless PREFIX is a standard one):
#   cc prog.c $(pkg-config --cflags --libs virtmem)                     # libvirtmem.so
#   cc prog.c $(pkg-config --cflags virtmem) PREFIX/lib/libvirtmem.a -lpthread -ldl -lm
# A program linked with the .so finds it at run time through the system's library path:
# run `ldconfig` after installing to /usr/local, or set LD_LIBRARY_PATH=PREFIX/lib, or link
# with -Wl,-rpath,PREFIX/lib.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
prefix=$1
case $prefix in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cargo=${CARGO:-cargo}

if [ -n "${VIRTMEM_LIB_DIR:-}" ]; then
    libs=$VIRTMEM_LIB_DIR
else
    "$cargo" build --release -p virtmem --manifest-path "$root/Cargo.toml"
    # Where cargo put them: CARGO_TARGET_DIR, build.target-dir in a config, or target/.
    target_dir=$("$cargo" metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    libs=${target_dir:-$root/target}/release
fi
for f in libvirtmem.a libvirtmem.so; do
    [ -f "$libs/$f" ] || { echo "$0: $libs/$f not found" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/crates/virtmem/Cargo.toml" | head -n 1)
dest=${DESTDIR:-}$prefix

mkdir -p "$dest/lib/pkgconfig" "$dest/include"
cp "$libs/libvirtmem.a" "$dest/lib/libvirtmem.a"
rm -f "$dest/lib/libvirtmem.so" # a new file: programs running with the old one keep it
cp "$libs/libvirtmem.so" "$dest/lib/libvirtmem.so"
chmod 644 "$dest/lib/libvirtmem.a"
chmod 755 "$dest/lib/libvirtmem.so"
cp "$root/include/virtmem.h" "$root/include/windows.h" "$dest/include/"
chmod 644 "$dest/include/virtmem.h" "$dest/include/windows.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$root/virtmem.pc.in" \
    >"$dest/lib/pkgconfig/virtmem.pc"

echo "installed virtmem $version under $dest:"
echo "  lib/libvirtmem.a lib/libvirtmem.so include/virtmem.h include/windows.h lib/pkgconfig/virtmem.pc"
