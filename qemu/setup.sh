#!/usr/bin/env bash
# Installs what pimg's tests and boot checks use, and fetches the real inputs of every board
# into inputs/: Debian's kernels (arm64 for the Pi 3/4 family, armhf armmp for the Pi 2,
# armel rpi for the Pi 1 and Zero), the Raspberry Pi firmware and a static busybox for each
# architecture. One folder holds them all; each board takes the packages of its own arch.
# The mirror is taken from this machine's own apt sources; nothing here names a host.
# Idempotent: a second run changes nothing unless the archive has moved on.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
inputs=${PIMG_INPUTS:-$here/inputs}
arches=(arm64 armhf armel)
# The referees the tests use; faketime and strace for the variation and fault tests; genimage
# and time for bench/compare.sh. QEMU comes from backports (below): raspi4b needs QEMU 9 or later.
packages_host=(dosfstools mtools fdisk cpio busybox gzip util-linux faketime strace genimage time)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and adds the ${arches[*]} architectures)"
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

extra=/etc/apt/sources.list.d/pimg-firmware.sources
want_extra="Types: deb
URIs: $uri
Suites: $codename
Components: non-free-firmware
Architectures: ${arches[*]}
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

# Backports, for a QEMU with the raspi4b machine (Debian 12 itself has QEMU 7.2).
backports=/etc/apt/sources.list.d/pimg-backports.sources
want_backports="Types: deb
URIs: $uri
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

changed=0
if [ ! -f "$backports" ] || [ "$(cat "$backports")" != "$want_backports" ]; then
    say "adding $codename-backports ($backports)"
    printf '%s\n' "$want_backports" > "$backports"
    changed=1
fi
for arch in "${arches[@]}"; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        say "adding the $arch architecture"
        dpkg --add-architecture "$arch"
        changed=1
    fi
done
# The file an earlier version of this script wrote for arm64 alone.
old_extra=/etc/apt/sources.list.d/pimg-arm64-firmware.sources
[ -f "$old_extra" ] && { rm -f "$old_extra"; changed=1; }
if [ ! -f "$extra" ] || [ "$(cat "$extra")" != "$want_extra" ]; then
    say "adding the non-free-firmware component ($extra)"
    printf '%s\n' "$want_extra" > "$extra"
    changed=1
fi
stamp=/var/lib/apt/lists/.pimg-updated
if [ "$changed" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    say "apt-get update"
    # A mirror caught mid-sync fails one index; try again, then go on with what apt has
    # (every package below is looked up by name, so a missing index shows up there).
    if ! apt-get update -qq; then
        sleep 20
        apt-get update -qq || say "warning: apt-get update reported errors; going on with the lists it has"
    fi
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

# QEMU 9 or later for -M raspi4b; the other Raspberry Pi machines boot on it as well.
qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-arm 2>/dev/null || true)
if [ -z "$qemu_version" ] || dpkg --compare-versions "$qemu_version" lt 1:9; then
    say "installing qemu-system-arm from $codename-backports (raspi4b needs QEMU 9 or later)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -t "$codename-backports" qemu-system-arm >/dev/null \
        || die "apt-get could not install qemu-system-arm from $codename-backports"
fi
qemu-system-aarch64 -machine help 2>/dev/null | grep -q '^raspi4b' \
    || die "qemu-system-aarch64 has no raspi4b machine; install qemu-system-arm 9 or later"

# The SPDX referee for the SBOM tests (PyPI; Debian 12 does not package it).
if ! command -v pyspdxtools >/dev/null 2>&1; then
    say "installing spdx-tools from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check spdx-tools==0.8.5 >/dev/null \
        || die "pip could not install spdx-tools: the SBOM tests need pyspdxtools"
fi

# The kernel a flavour's meta package points at, e.g. linux-image-arm64 -> linux-image-6.1.0-56-arm64.
kernel_of() { # meta-package arch
    apt-cache depends "$1:$2" 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ { sub(":.*", "", $2); print $2; exit }'
}

mkdir -p "$inputs"
fetch() { # package:arch
    local spec=$1 name=${1%%:*} arch=${1##*:} file tmp
    file=$(apt-get download --print-uris "$spec" 2>/dev/null | awk '{ print $2 }' | head -n1 || true)
    [ -n "$file" ] || die "apt-get cannot find $spec: is the $arch architecture (and for the firmware the non-free-firmware component) in apt's lists? run apt-get update"
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
    # Drop older versions of the same package and arch so the profiles' globs match one file.
    local f
    for f in "$inputs/${name}_"*"_$arch.deb"; do
        [ -e "$f" ] || continue
        [ "$(basename "$f")" = "$file" ] || { say "removing stale $(basename "$f")"; rm -f "$f"; }
    done
}

# arm64: the generic kernel in its unsigned form (no shim, plain Image).
k=$(kernel_of linux-image-arm64 arm64)
[ -n "$k" ] || die "cannot resolve linux-image-arm64:arm64; is the arm64 architecture in apt's lists?"
fetch "${k%-unsigned}-unsigned:arm64"
# armhf: the multiplatform ARMv7 kernel (Pi 2). armel: the ARMv6 rpi kernel (Pi 1, Zero).
k=$(kernel_of linux-image-armmp armhf)
[ -n "$k" ] || die "cannot resolve linux-image-armmp:armhf; is the armhf architecture in apt's lists?"
fetch "$k:armhf"
k=$(kernel_of linux-image-rpi armel)
[ -n "$k" ] || die "cannot resolve linux-image-rpi:armel; is the armel architecture in apt's lists?"
fetch "$k:armel"
fetch raspi-firmware:all
for arch in "${arches[@]}"; do
    fetch "busybox-static:$arch"
done
say "inputs ready in $inputs:"
ls -1 "$inputs" >&2
