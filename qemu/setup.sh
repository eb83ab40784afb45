#!/usr/bin/env bash
# Installs what pimg's tests and boot checks use, and fetches the real arm64 inputs
# (Debian kernel, Raspberry Pi firmware, static busybox) into inputs/.
# The mirror is taken from this machine's own apt sources; nothing here names a host.
# Idempotent: a second run changes nothing unless the archive has moved on.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
inputs=${PIMG_INPUTS:-$here/inputs}
arch=arm64
# QEMU and the referees the tests use; faketime and strace for the variation and fault tests;
# genimage and time for bench/compare.sh.
packages_host=(qemu-system-arm dosfstools mtools fdisk cpio busybox gzip util-linux faketime strace genimage time)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and adds the $arch architecture)"
command -v apt-get >/dev/null || die "apt-get not found: this script expects Debian 12"

. /etc/os-release
codename=${VERSION_CODENAME:?/etc/os-release names no VERSION_CODENAME}

# The first archive URI serving "$codename" in the existing sources (deb822 or one-line style).
mirror_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$codename" '
            /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri=""; hit=0; next }
            tolower($1) == "uris:"   { uri=$2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) hit=1 }
            END { if (uri != "" && hit) print uri }
        ' "$f" | head -n1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$codename" '$1 == "deb" {
            i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i+1) == want) { print $i; exit } }' "$f"
    done
}

uri=$(mirror_uri | grep -v '^$' | head -n1 || true)
[ -n "$uri" ] || die "no apt source for '$codename' found in /etc/apt/sources.list{,.d}: add the Debian archive first"

extra=/etc/apt/sources.list.d/pimg-$arch-firmware.sources
want_extra="Types: deb
URIs: $uri
Suites: $codename
Components: non-free-firmware
Architectures: $arch
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

changed=0
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    say "adding the $arch architecture"
    dpkg --add-architecture "$arch"
    changed=1
fi
if [ ! -f "$extra" ] || [ "$(cat "$extra")" != "$want_extra" ]; then
    say "adding the non-free-firmware component for $arch ($extra)"
    printf '%s\n' "$want_extra" > "$extra"
    changed=1
fi
stamp=/var/lib/apt/lists/.pimg-updated
if [ "$changed" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    say "apt-get update"
    apt-get update -qq
    touch "$stamp"
fi

missing=()
for p in "${packages_host[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The SPDX referee for the SBOM tests (PyPI; Debian 12 does not package it).
if ! command -v pyspdxtools >/dev/null 2>&1; then
    say "installing spdx-tools from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check spdx-tools==0.8.5 >/dev/null \
        || die "pip could not install spdx-tools: the SBOM tests need pyspdxtools"
fi

# The kernel image the arm64 meta package points at, in its unsigned form (no shim, plain Image).
meta_dep=$(apt-cache depends "linux-image-$arch:$arch" 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ { sub(":.*", "", $2); print $2; exit }')
[ -n "$meta_dep" ] || die "cannot resolve linux-image-$arch:$arch; is the $arch architecture in apt's lists?"
kernel_pkg="${meta_dep%-unsigned}"
kernel_pkg="${kernel_pkg}-unsigned"

mkdir -p "$inputs"
fetch() { # package[:arch]
    local spec=$1 name=${1%%:*} file tmp
    file=$(apt-get download --print-uris "$spec" 2>/dev/null | awk '{ print $2 }' | head -n1 || true)
    [ -n "$file" ] || die "apt-get cannot find $spec: is the $arch architecture and the non-free-firmware component in apt's lists?"
    if [ -f "$inputs/$file" ]; then
        say "have $file"
    else
        say "downloading $file"
        # apt's sandbox user must be able to write where it downloads.
        tmp=$(mktemp -d)
        chown _apt "$tmp" 2>/dev/null || true
        (cd "$tmp" && apt-get download -qq "$spec")
        mv "$tmp/$file" "$inputs/$file.part" && mv "$inputs/$file.part" "$inputs/$file"
        rm -rf "$tmp"
    fi
    # Drop older versions of the same package so the profile's globs match one file.
    local f
    for f in "$inputs/${name}_"*.deb; do
        [ "$(basename "$f")" = "$file" ] || { say "removing stale $(basename "$f")"; rm -f "$f"; }
    done
}
fetch "$kernel_pkg:$arch"
fetch raspi-firmware        # Architecture: all
fetch "busybox-static:$arch"
say "inputs ready in $inputs:"
ls -1 "$inputs" >&2
