#!/usr/bin/env bash
# Installs what pimg's tests and boot checks use, and fetches the real inputs of every board
# for two Debian releases: 13 (trixie) into inputs/, the default set, and 12 (bookworm) into
# inputs/bookworm/. Each set holds Debian's kernels (arm64 for the Pi 3/4 family, armhf armmp
# for the Pi 2, armel rpi for the Pi 1 and Zero), the Raspberry Pi firmware, the Broadcom WiFi
# firmware and a static busybox for each architecture; each board takes the packages of its
# own arch. The inputs come through a private apt configuration per release under
# /var/lib/pimg-apt/, so the host's apt needs neither another release nor the foreign arches.
# The mirror is taken from this machine's own apt sources; nothing here names a host.
# Idempotent: a second run changes nothing unless the archive has moved on.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
inputs=${PIMG_INPUTS:-$here/inputs}
arches=(arm64 armhf armel)
# The first release is the default input set (inputs/ itself); each other one goes into a
# folder of its name there, which no profile's input glob matches.
releases=(trixie bookworm)
papt_root=/var/lib/pimg-apt
# The referees the tests use; faketime and strace for the variation and fault tests; genimage
# and time for bench/compare.sh; squashfs-tools judges the modloop writer; xz-utils, zstd and
# bmap-tools judge the release images; openssl and python3 referee the boot repository's
# index. QEMU comes from backports (below): raspi4b needs QEMU 9 or later.
packages_host=(dosfstools mtools fdisk cpio busybox gzip util-linux faketime strace genimage time squashfs-tools xz-utils zstd bmap-tools openssl python3 gpg gpg-agent sqv man-db zsh fish)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and writes $papt_root)"
command -v apt-get >/dev/null || die "apt-get not found: this script expects Debian 12"

# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:?/etc/os-release names no VERSION_CODENAME}

# The first archive URI serving suite $1 in the existing sources (deb822 or one-line style).
mirror_uri() { # suite
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$1" '
            /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri=""; hit=0; next }
            tolower($1) == "uris:"   { uri=$2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) hit=1 }
            END { if (uri != "" && hit) print uri }
        ' "$f" | head -n1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$1" '$1 == "deb" {
            i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i+1) == want) { print $i; exit } }' "$f"
    done
}
uri_of() { mirror_uri "$1" | grep -v '^$' | head -n1 || true; }

uri=$(uri_of "$codename")
[ -n "$uri" ] || die "no apt source for '$codename' found in /etc/apt/sources.list{,.d}: add the Debian archive first"

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
# The files earlier versions of this script wrote for the inputs, which now come through the
# private configurations; the foreign architectures they added are left as they are.
for old in /etc/apt/sources.list.d/pimg-{arm64-,}firmware.sources; do
    if [ -f "$old" ]; then
        say "removing $old (the inputs now come through $papt_root)"
        rm -f "$old"
        changed=1
    fi
done

# A mirror caught mid-sync fails one index; try again, then go on with what apt has
# (every package below is looked up by name, so a missing index shows up there).
update() { # apt-get command...
    "$@" update -qq && return
    sleep 20
    "$@" update -qq || say "warning: apt-get update reported errors; going on with the lists it has"
}

stamp=/var/lib/apt/lists/.pimg-updated
if [ "$changed" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    say "apt-get update"
    update apt-get
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

# apt-get or apt-cache on release $2's private configuration alone: its own sources, lists,
# cache and an empty dpkg status; the host's pins and sources do not apply. Its package cache
# is kept between calls even where the host's config turns apt's off (Docker images do).
papt() { # tool release args...
    local tool=$1 d=$papt_root/$2 a opts=()
    shift 2
    for a in "${arches[@]}"; do opts+=(-o "APT::Architectures::=$a"); done
    "$tool" -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/none" \
        -o "Dir::Etc::Preferences=$d/none/preferences" -o "Dir::Etc::PreferencesParts=$d/none" \
        -o "Dir::State=$d/state" -o "Dir::State::Lists=$d/state/lists" \
        -o "Dir::State::status=$d/state/status" \
        -o "Dir::Cache=$d/cache" -o Dir::Cache::pkgcache=pkgcache.bin \
        -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
        "${opts[@]}" "$@"
}

# Writes release $1's private sources (the host's URIs for its own suite, -updates and
# -security, renamed to the release's) and updates its lists when they changed or are old.
papt_setup() { # release
    local rel=$1 d=$papt_root/$1 suffix u want="" opts upd=0
    opts="arch=$(IFS=,; echo "${arches[*]}") signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
    for suffix in "" -updates -security; do
        u=$(uri_of "$codename$suffix")
        [ -n "$u" ] || continue
        want+="deb [$opts] $u $rel$suffix main non-free-firmware"$'\n'
    done
    mkdir -p "$d/none" "$d/state/lists/partial" "$d/cache/archives/partial"
    [ -f "$d/state/status" ] || : > "$d/state/status"
    if [ ! -f "$d/sources.list" ] || [ "$(cat "$d/sources.list")"$'\n' != "$want" ]; then
        say "writing $d/sources.list ($rel)"
        printf '%s' "$want" > "$d/sources.list"
        upd=1
    fi
    if [ "$upd" = 1 ] || [ ! -f "$d/.updated" ] || [ -n "$(find "$d/.updated" -mmin +720 2>/dev/null)" ]; then
        say "apt-get update ($rel, private lists in $d)"
        update papt apt-get "$rel"
        touch "$d/.updated"
    fi
}

# The kernel a flavour's meta package points at, e.g. linux-image-arm64 -> linux-image-6.12.117+deb13-arm64.
kernel_of() { # release meta-package arch
    papt apt-cache "$1" depends "$2:$3" 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ { sub(":.*", "", $2); print $2; exit }'
}

# Downloads package:arch of the release into dest, once. Older files matching the stale glob
# (by default the same package and arch) are removed so the profiles' globs match one file.
fetch() { # release dest package:arch [stale-glob]
    local rel=$1 dest=$2 spec=$3 name=${3%%:*} arch=${3##*:} file tmp f shown
    local stale=${4:-${name}_*_$arch.deb}
    shown=${dest#"$inputs"}; shown=${shown#/}; shown=${shown:+$shown/}
    file=$(papt apt-get "$rel" download --print-uris "$spec" 2>/dev/null | awk '{ print $2 }' | head -n1 || true)
    [ -n "$file" ] || die "apt-get cannot find $spec in $rel: see the lists in $papt_root/$rel (remove $papt_root/$rel/.updated to update them again)"
    if [ -f "$dest/$file" ]; then
        say "have $shown$file"
    elif [ "$dest" != "$inputs" ] && [ -f "$inputs/$file" ]; then
        # An earlier version of this script kept this release's files in inputs/ itself.
        say "moving $file into $shown"
        mv "$inputs/$file" "$dest/$file"
    else
        say "downloading $shown$file"
        # apt's sandbox user must be able to write where it downloads.
        tmp=$(mktemp -d)
        chown _apt "$tmp" 2>/dev/null || true
        # A file the mirror does not serve (yet) gets one more try; then the other inputs go
        # on and the run names every file it could not get at the end.
        if ! (cd "$tmp" && papt apt-get "$rel" download -qq "$spec") \
            && ! { sleep 20; (cd "$tmp" && papt apt-get "$rel" download -qq "$spec"); }; then
            rm -rf "$tmp"
            failed+=("$shown$file")
            return 0
        fi
        mv "$tmp/$file" "$dest/$file.part" && mv "$dest/$file.part" "$dest/$file"
        rm -rf "$tmp"
    fi
    for f in "$dest"/$stale; do
        [ -e "$f" ] || continue
        [ "$(basename "$f")" = "$file" ] || { say "removing stale $shown$(basename "$f")"; rm -f "$f"; }
    done
}

failed=()
# The other releases first: their files from an older inputs/ are moved, not fetched again,
# before the default set's fetches remove them there as stale.
for ((i = ${#releases[@]} - 1; i >= 0; i--)); do
    rel=${releases[i]}
    if [ "$i" = 0 ]; then dest=$inputs; else dest=$inputs/$rel; fi
    mkdir -p "$dest"
    papt_setup "$rel"
    # One kernel per arch in a set: a new ABI is a new package name, so any other kernel is stale.
    # arm64: the generic kernel in its unsigned form (no shim, plain Image).
    k=$(kernel_of "$rel" linux-image-arm64 arm64)
    [ -n "$k" ] || die "cannot resolve linux-image-arm64:arm64 in $rel"
    fetch "$rel" "$dest" "${k%-unsigned}-unsigned:arm64" 'linux-image-*_arm64.deb'
    # armhf: the multiplatform ARMv7 kernel (Pi 2). armel: the ARMv6 rpi kernel (Pi 1, Zero).
    k=$(kernel_of "$rel" linux-image-armmp armhf)
    [ -n "$k" ] || die "cannot resolve linux-image-armmp:armhf in $rel"
    fetch "$rel" "$dest" "$k:armhf" 'linux-image-*_armhf.deb'
    k=$(kernel_of "$rel" linux-image-rpi armel)
    [ -n "$k" ] || die "cannot resolve linux-image-rpi:armel in $rel"
    fetch "$rel" "$dest" "$k:armel" 'linux-image-*_armel.deb'
    fetch "$rel" "$dest" raspi-firmware:all
    fetch "$rel" "$dest" firmware-brcm80211:all
    for arch in "${arches[@]}"; do
        fetch "$rel" "$dest" "busybox-static:$arch"
    done
done
# A file the archive lists but the mirror does not serve is reported, not fatal: the tests that
# need it fail naming it, and the boards that can build from the other release still do (the
# Debian 13 armel kernel is one such file on some mirrors; the armel boards then use bookworm/).
[ ${#failed[@]} = 0 ] || say "warning: the mirror did not serve ${failed[*]}; everything else is in $inputs"
say "inputs ready in $inputs (${releases[0]}) and its folders ${releases[*]:1}:"
ls -1R "$inputs" >&2
