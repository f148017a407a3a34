#!/usr/bin/env bash
# Installs what tsvm needs on a Debian machine: Debian packages (nasm to build
# test and demo programs, qemu-system-x86 and bochs as the reference CPUs) and
# the npm packages, then compiles. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: nasm (test and demo programs), qemu-system-x86 (the reference
# CPU), bochs (the second reference, where QEMU departs from the SDM:
# test/cpu/bochs.test.ts; bochs-term is its smallest display plugin, which keeps
# apt from pulling in the wxWidgets one), seabios (the firmware), xz-utils (kernel
# extraction), and what the boot tests build media from (grub-pc-bin, xorriso,
# mtools, isolinux, syslinux-common), memtest86+ (a boot test runs its
# first pass), qemu-utils (qemu-img: the reference for the qcow2 tests), and
# tcpdump (the network test reads the pcap that filter-dump wrote), and
# chromium (the web console's browser test drives it headless through
# playwright-core).
pkgs=(nasm qemu-system-x86 bochs bochs-term seabios xz-utils grub-pc-bin grub-common xorriso mtools isolinux syslinux-common memtest86+ qemu-utils tcpdump chromium)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "tsvm setup: please install these Debian packages as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "tsvm setup: installing Debian packages: ${need[*]}"
  # a mirror mid-sync can fail one index file: go on with the lists we have, and let
  # apt-get install say whether a package is really missing
  $SUDO apt-get update -qq || echo "tsvm setup: apt-get update reported errors (above); installing from the package lists apt has" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -b
