#!/usr/bin/env bash
# pimg against the tools it replaces, on this machine, as ratios (medians of --runs runs,
# all measured in one run of this script). Not a test: it prints a table and PASS/FAIL per
# target. Needs the real inputs (qemu/setup.sh) and: genimage dosfstools mtools fdisk cpio
# strace time openssl (diffoscope for the diff row, qemu-system-arm for the boot row).
#
#   bench/compare.sh [--runs N] [--pimg PATH] [--inputs DIR] [--full] [--keep] [--only initramfs|build|release]
#
# pimg's phases (reading inputs, initramfs, image, hashing, tarball) are timed from the
# system calls that bound them (strace -ttt: the last close of an input, the open of the
# lock, open/fsync/close of each staged output), so no timing code is needed in pimg.
# --only initramfs times just pimg and the cpio|gzip (and apkovl tar|gzip) pipelines and prints
# those rows; --only build just the whole build, cold and warm (input cache), against the
# pipeline a release engineer would script (dpkg-deb -x, cpio|gzip, genimage, tar|gzip,
# sha256sum). pimg's phase rows read every input from its file (--no-cache), as before the
# input cache existed. --only release times the compressed release images: pimg build
# --compress xz (and zstd), less the same build without it (so it includes the bmap), against
# xz -T2 -9 and zstd -19 -T2 on the same image, with the sizes (needs xz-utils and zstd).
set -euo pipefail

RUNS=5
PIMG=""
INPUTS=""
FULL=0
KEEP=0
ONLY=""
EPOCH=1700000000
DIFFOSCOPE_TIMEOUT=300
DIFFOSCOPE=""
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --pimg) PIMG=$2; shift 2 ;;
    --inputs) INPUTS=$2; shift 2 ;;
    --full) FULL=1; shift ;;
    --keep) KEEP=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
case "$RUNS" in '' | *[!0-9]* | 0) echo "compare.sh: --runs needs a positive number" >&2; exit 2 ;; esac
case "$ONLY" in '' | initramfs | build | release) ;; *) echo "compare.sh: --only takes initramfs, build or release" >&2; exit 2 ;; esac
if [ "$ONLY" = release ]; then
    for t in xz zstd; do command -v "$t" >/dev/null 2>&1 || { echo "compare.sh: missing $t: apt-get install xz-utils zstd" >&2; exit 2; }; done
fi

missing=()
for t in genimage mkfs.vfat mcopy sfdisk cpio gzip tar sha256sum openssl strace /usr/bin/time awk dpkg-deb; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "compare.sh: missing tools: ${missing[*]}" >&2
    echo "  apt-get install genimage dosfstools mtools fdisk cpio strace time openssl" >&2
    exit 2
fi

INPUTS=${INPUTS:-$ROOT/inputs}
# Physical path: strace -y prints resolved paths, which the phase boundaries are matched against.
INPUTS=$(cd "$INPUTS" && pwd -P)
if [ -z "$PIMG" ]; then
    (cd "$ROOT" && cargo build --release --locked --quiet)
    PIMG=$ROOT/target/release/pimg
fi
PIMG=$(cd "$(dirname "$PIMG")" && pwd)/$(basename "$PIMG")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pimg-bench.XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
M=$WORK/m
mkdir -p "$M"
export SOURCE_DATE_EPOCH=$EPOCH TZ=UTC LC_ALL=C

log() { printf '%s\n' "$*" >&2; }
# rec NAME VALUE: one sample.
rec() { echo "$2" >>"$M/$1"; }
# timed NAME CMD...: wall seconds of CMD, recorded under NAME.
timed() {
    local name=$1 s e
    shift
    s=$EPOCHREALTIME
    "$@"
    e=$EPOCHREALTIME
    rec "$name" "$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.4f", e-s}')"
}
med() {
    [ -s "$M/$1" ] || { echo ""; return; }
    sort -g "$M/$1" | awk '{a[NR]=$1} END{if (NR%2) printf "%.4f", a[(NR+1)/2]; else printf "%.4f", (a[NR/2]+a[NR/2+1])/2}'
}
has() { "$PIMG" "$1" --help >/dev/null 2>&1; }

# pimg build under strace: total and phases from the system calls that bound them.
pimg_phases() {
    local out=$1 trace=$WORK/trace
    rm -rf "$out"
    strace -f --seccomp-bpf -ttt -T -y -qq -e trace=execve,openat,close,fsync -o "$trace" \
        "$PIMG" build --no-cache --board rpi3b --inputs "$INPUTS" --out "$out" >/dev/null
    awk -v inputs="$INPUTS/" '
        !t0 { t0 = $2 }
        { t_end = $2 }
        index($0, "close(") && index($0, "<" inputs) && !t_lock { t_in = $2 }
        /openat\(.*(\.pimg\.lock|\.pimg-stage-[0-9a-f]+)"/ && !t_lock { t_lock = $2 }
        /openat\(.*(\.img\.pimg-partial|\.pimg-stage-[0-9a-f]+\/[^\/"]*\.img)"/ && !t_io { t_io = $2 }
        /fsync\([0-9]+<[^>]*(\.img\.pimg-partial|\.pimg-stage-[0-9a-f]+\/[^\/>]*\.img)>/ && !t_if {
            t_if = $2
            if (match($0, /<[0-9.]+>$/)) t_fe = t_if + substr($0, RSTART + 1, RLENGTH - 2)
        }
        /close\([0-9]+<[^>]*(\.img\.pimg-partial|\.pimg-stage-[0-9a-f]+\/[^\/>]*\.img)>/ && !t_ic { t_ic = $2 }
        /openat\(.*(\.tar\.gz\.pimg-partial|\.pimg-stage-[0-9a-f]+\/[^\/"]*\.tar\.gz)"/ && !t_to && $0 !~ /apkovl/ { t_to = $2 }
        END {
            if (!(t_in && t_lock && t_io && t_if && t_fe && t_ic && t_to)) { print "n/a"; exit }
            printf "%.4f %.4f %.4f %.4f %.4f %.4f %.4f\n", t_end - t0, t_in - t0, t_lock - t_in,
                t_if - t_io, t_fe - t_if, t_ic - t_fe, t_to - t_ic
        }' "$trace"
}

log "pimg:   $PIMG ($("$PIMG" --version))"
log "inputs: $INPUTS"
log "work:   $WORK"

# The trees the other tools get: exactly what pimg put into its outputs.
log "preparing the boot, initramfs and overlay trees from a pimg build..."
"$PIMG" build --no-cache --board rpi3b --inputs "$INPUTS" --out "$WORK/ref" >/dev/null
BT=$WORK/boot-tree IT=$WORK/initramfs-tree OT=$WORK/apkovl-tree
mkdir -p "$BT" "$IT" "$OT"
tar -xzf "$WORK/ref/rpi3b.tar.gz" -C "$BT"
(cd "$IT" && gzip -dc "$WORK/ref/rpi3b.initramfs.cpio.gz" | cpio -idm --quiet --no-absolute-filenames)
APKOVL=$(cd "$WORK/ref" && ls ./*.apkovl.tar.gz | head -n 1)
tar -xzf "$WORK/ref/$APKOVL" -C "$OT" --numeric-owner
IMG_SIZE=$(stat -c %s "$WORK/ref/rpi3b.img")
PART_OFFSET_MIB=4
PART_SIZE_MIB=$((IMG_SIZE / 1048576 - PART_OFFSET_MIB))
LARGEST_INPUT=$(find "$INPUTS" -type f -printf '%s\n' | sort -n | tail -n 1)

cat >"$WORK/genimage.cfg" <<EOF
image boot.vfat {
	vfat {
		label = "PIBOOT"
		extraargs = "-F 32 -S 512 -s 4 -i 12345678"
	}
	size = ${PART_SIZE_MIB}M
}
image rpi3b.img {
	hdimage {
		partition-table-type = "mbr"
		disk-signature = 0x12345678
	}
	partition boot {
		partition-type = 0xC
		offset = ${PART_OFFSET_MIB}M
		image = "boot.vfat"
	}
	size = $((IMG_SIZE / 1048576))M
}
EOF
genimage_run() {
    local out=$1
    rm -rf "$out" "$WORK/gtmp"
    mkdir -p "$out"
    genimage --rootpath "$BT" --tmppath "$WORK/gtmp" --inputpath "$out" --outputpath "$out" \
        --config "$WORK/genimage.cfg" >/dev/null 2>&1
}
# Alpine's mkimg.arm.sh steps, made as deterministic as those tools allow.
alpine_image() {
    local d=$1
    rm -rf "$d"
    mkdir -p "$d"
    truncate -s "${PART_SIZE_MIB}M" "$d/part.img"
    mkfs.vfat --invariant -F 32 -S 512 -s 4 -i 12345678 -n PIBOOT "$d/part.img" >/dev/null
    MTOOLS_SKIP_CHECK=1 mcopy -s -p -i "$d/part.img" "$BT"/* ::/
    truncate -s "$IMG_SIZE" "$d/rpi3b.img"
    printf 'label: dos\nlabel-id: 0x12345678\nstart=%d, type=c\n' $((PART_OFFSET_MIB * 2048)) |
        sfdisk -q "$d/rpi3b.img"
    dd if="$d/part.img" of="$d/rpi3b.img" bs=1M seek="$PART_OFFSET_MIB" conv=notrunc,sparse status=none
}
# The rpi3b build as a script would do it: unpack the three packages, then the same outputs.
PEER_DEBS=("$INPUTS"/raspi-firmware_*.deb "$INPUTS"/busybox-static_*_arm64.deb "$INPUTS"/linux-image-*_arm64.deb)
peer_pipeline() {
    local d=$WORK/peer
    rm -rf "$d"
    mkdir -p "$d/x"
    for deb in "${PEER_DEBS[@]}"; do dpkg-deb -x "$deb" "$d/x"; done
    cpio_gzip
    genimage_run "$d/g"
    sync "$d/g/rpi3b.img"
    tar_gzip "$BT" "$d/rpi.tar.gz"
    sha256sum "$d/g/rpi3b.img" "$d/rpi.tar.gz" "$WORK/initramfs.cpio.gz" >/dev/null
}
# pimg's whole build with an empty input cache, then again with the cache it filled.
pimg_cached() {
    rm -rf "$WORK/c-$1"
    "$PIMG" build --board rpi3b --inputs "$INPUTS" --out "$WORK/c-$1" --cache "$WORK/cache" >/dev/null
}
build_rows() {
    local peer cold warm r
    peer=$(med peer_pipeline) cold=$(med pimg_cold) warm=$(med pimg_warm)
    r=$(ratio "$cold" "$peer")
    row "whole rpi3b build from the .debs, empty input cache: pimg vs dpkg-deb -x + cpio\|gzip -9n + genimage + sync + tar\|gzip -9n + sha256sum" "$(secs "$cold")" "$(secs "$peer")" "$r" "≤ 0.50" "$(verdict "$r" 0.50)"
    r=$(ratio "$warm" "$peer")
    row "whole rpi3b build, input cache filled: pimg vs the same pipeline" "$(secs "$warm")" "$(secs "$peer")" "$r" "≤ 0.15" "$(verdict "$r" 0.15)"
}
cpio_gzip() { (cd "$IT" && find . -mindepth 1 | LC_ALL=C sort | cpio --reproducible -o -H newc --quiet | gzip -9n >"$WORK/initramfs.cpio.gz"); }
tar_gzip() { tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -C "$1" -cf - . | gzip -9n >"$2"; }

MB=$((1024 * 1024))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a/b }'; }
verdict() { # verdict RATIO LIMIT
    awk -v r="$1" -v l="$2" 'BEGIN{ if (r == "n/a") print "n/a"; else if (r <= l) print "PASS"; else print "FAIL" }'
}
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
secs() { if [ -n "$1" ]; then printf '%.3f s' "$1"; else printf 'n/a'; fi; }

table_head() {
    echo
    echo "pimg benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "pimg $("$PIMG" --version | awk '{print $2}'), image $((IMG_SIZE / MB)) MiB, boot tree $(du -sk "$BT" | cut -f1) KiB, medians of $RUNS runs"
    echo
    row "measure" "pimg" "other" "ratio" "target" "result"
    row "---" "---" "---" "---" "---" "---"
}
initramfs_rows() {
    local pin ci r
    pin=$(med pimg_initramfs) ci=$(med cpio_gzip)
    r=$(ratio "$pin" "$ci")
    row "initramfs (gzip -9): pimg phase (with apkovl, boot-tree digest) vs find\|sort\|cpio --reproducible\|gzip -9n" "$(secs "$pin")" "$(secs "$ci")" "$r" "≤ 0.50" "$(verdict "$r" 0.50)"
    row "apkovl: tar --sort=name --mtime\|gzip -9n (pimg: inside the initramfs phase)" "-" "$(secs "$(med apkovl_tar)")" "-" "" "info"
}

HAS_VERIFY=0 HAS_DIFF=0 HAS_BOOT=0
has verify && HAS_VERIFY=1
has diff && HAS_DIFF=1
has boot && command -v qemu-system-aarch64 >/dev/null 2>&1 && HAS_BOOT=1

# pimg's build with a --compress codec (or none), warm input cache, two threads.
pimg_release() { # pimg_release OUT [CODEC]
    rm -rf "$WORK/$1"
    "$PIMG" build --board rpi3b --inputs "$INPUTS" --out "$WORK/$1" --cache "$WORK/cache" \
        --threads 2 ${2:+--compress "$2"} >/dev/null
}
release_rows() {
    local plain r codec tool ext pimg_s tool_s pimg_b tool_b
    plain=$(med rel_plain)
    for codec in xz zstd; do
        case $codec in xz) tool="xz -T2 -9" ext=xz ;; zstd) tool="zstd -19 -T2" ext=zst ;; esac
        pimg_s=$(awk -v a="$(med "rel_$codec")" -v b="$plain" 'BEGIN{printf "%.4f", a-b}')
        tool_s=$(med "tool_$codec")
        pimg_b=$(stat -c %s "$WORK/r-$codec/rpi3b.img.$ext")
        tool_b=$(stat -c %s "$WORK/tool.img.$ext")
        r=$(ratio "$pimg_s" "$tool_s")
        row "release $codec, $((IMG_SIZE / MB)) MiB image, 2 threads: pimg --compress $codec (build with it less build without: compress + bmap) vs $tool" "$(secs "$pimg_s")" "$(secs "$tool_s")" "$r" "" "info"
        r=$(ratio "$pimg_b" "$tool_b")
        row "release $codec size: pimg .img.$ext vs $tool" "$((pimg_b / 1024)) KiB" "$((tool_b / 1024)) KiB" "$r" "" "info"
    done
}
if [ "$ONLY" = release ]; then
    pimg_release r-warm
    for i in $(seq "$RUNS"); do
        log "run $i/$RUNS"
        timed rel_plain pimg_release r-plain
        timed rel_xz pimg_release r-xz xz
        timed rel_zstd pimg_release r-zstd zstd
        timed tool_xz sh -c "xz -T2 -9 -c '$WORK/ref/rpi3b.img' >'$WORK/tool.img.xz'"
        timed tool_zstd sh -c "zstd -q -19 -T2 -c '$WORK/ref/rpi3b.img' >'$WORK/tool.img.zst'"
    done
    table_head
    release_rows
    exit 0
fi

for i in $(seq "$RUNS"); do
    log "run $i/$RUNS"
    rm -rf "$WORK/cache"
    timed pimg_cold pimg_cached cold
    timed pimg_warm pimg_cached warm
    timed peer_pipeline peer_pipeline
    if [ "$ONLY" = build ]; then
        continue
    fi
    # The last pimg run uses another time zone: its outputs must equal the first run's.
    if [ "$i" = "$RUNS" ] && [ "$RUNS" -gt 1 ]; then export TZ=Asia/Kathmandu; fi
    read -r total resolve mid iw isync ih tarball <<<"$(pimg_phases "$WORK/p$i")" || true
    export TZ=UTC
    if [ "${total:-n/a}" != n/a ]; then
        rec pimg_total "$total"; rec pimg_resolve "$resolve"; rec pimg_initramfs "$mid"
        rec pimg_img_write "$iw"; rec pimg_img_sync "$isync"; rec pimg_img_hash "$ih"
        rec pimg_tarball "$tarball"
        rec pimg_image "$(awk -v a="$iw" -v b="$isync" -v c="$ih" 'BEGIN{printf "%.4f", a+b+c}')"
    fi
    if [ "$ONLY" = initramfs ]; then
        timed cpio_gzip cpio_gzip
        timed apkovl_tar tar_gzip "$OT" "$WORK/apkovl.tar.gz"
        if [ "$i" -gt 1 ]; then rm -rf "$WORK/p$((i - 1))"; fi
        continue
    fi
    timed genimage genimage_run "$WORK/g"
    timed g_sync sync "$WORK/g/rpi3b.img"
    timed g_sha256sum sha256sum "$WORK/g/rpi3b.img" >/dev/null
    timed alpine_image alpine_image "$WORK/a"
    timed cpio_gzip cpio_gzip
    timed apkovl_tar tar_gzip "$OT" "$WORK/apkovl.tar.gz"
    timed rpi_tar tar_gzip "$BT" "$WORK/rpi.tar.gz"
    timed sha256sum sha256sum "$WORK/p$i/rpi3b.img" >/dev/null
    timed openssl openssl dgst -sha256 "$WORK/p$i/rpi3b.img" >/dev/null
    # The state pimg hashes its image in: just written, holes never read (not in the page
    # cache). A fresh sparse copy is in the same state.
    rm -f "$WORK/cold.img"
    cp --sparse=always "$WORK/p$i/rpi3b.img" "$WORK/cold.img"
    timed openssl_cold openssl dgst -sha256 "$WORK/cold.img" >/dev/null
    rm -f "$WORK/cold.img"
    if [ "$HAS_VERIFY" = 1 ]; then
        timed verify_sums "$PIMG" verify --sums "$WORK/p$i/SHA256SUMS" "$WORK/p$i/rpi3b.img" >/dev/null
        timed sha256sum_c sh -c "cd '$WORK/p$i' && sha256sum -c --quiet SHA256SUMS"
        timed verify_all "$PIMG" verify "$WORK/p$i" >/dev/null
    fi
    if [ "$i" -gt 1 ]; then rm -rf "$WORK/p$((i - 1))"; fi
done
LAST=$WORK/p$RUNS
PIMG_TZ="n/a (one run)"
if [ "$RUNS" -gt 1 ]; then
    if cmp -s "$WORK/ref/SHA256SUMS" "$LAST/SHA256SUMS"; then PIMG_TZ="yes"; else PIMG_TZ="NO"; fi
fi

if [ "$ONLY" = build ]; then
    table_head
    build_rows
    exit 0
fi
if [ "$ONLY" = initramfs ]; then
    table_head
    initramfs_rows
    echo
    echo "reproducible (same bytes): pimg across TZ (UTC vs Asia/Kathmandu): $PIMG_TZ"
    exit 0
fi

log "reproducibility of genimage and the Alpine pipeline across TZ..."
tzcheck() { # tzcheck FUNC DIR: "yes"/"no" for a repeat 3 s later, and TZ=UTC vs Asia/Kathmandu
    local f=$1 d=$2 a b c
    TZ=UTC "$f" "$d"; a=$(sha256sum <"$d/rpi3b.img")
    sleep 3 # FAT time stamps have 2 s resolution
    TZ=UTC "$f" "$d"; b=$(sha256sum <"$d/rpi3b.img")
    TZ=Asia/Kathmandu "$f" "$d"; c=$(sha256sum <"$d/rpi3b.img")
    printf '%s/%s' "$([ "$a" = "$b" ] && echo yes || echo no)" "$([ "$a" = "$c" ] && echo yes || echo no)"
}
G_REPRO=$(tzcheck genimage_run "$WORK/g")
A_REPRO=$(tzcheck alpine_image "$WORK/a")

log "peak memory for a 128 MiB and a 2 GiB image..."
sed -e 's/^size = "256MiB"/size = "128MiB"/' -e 's/^cluster_size = "2KiB"/cluster_size = "1KiB"/' \
    "$ROOT/boards/rpi3b.toml" >"$WORK/rpi3b-128m.toml"
sed -e 's/^size = "256MiB"/size = "2GiB"/' "$ROOT/boards/rpi3b.toml" >"$WORK/rpi3b-2g.toml"
grep -q '^size = "128MiB"' "$WORK/rpi3b-128m.toml" && grep -q '^size = "2GiB"' "$WORK/rpi3b-2g.toml" ||
    { echo "compare.sh: boards/rpi3b.toml no longer has size = \"256MiB\"" >&2; exit 1; }
rss() { # rss NAME BOARD: peak RSS (KiB) and wall time of one build
    rm -rf "$WORK/mem"
    /usr/bin/time -f '%M %e' -o "$WORK/time" "$PIMG" build --no-cache --board "$2" --inputs "$INPUTS" --out "$WORK/mem" >/dev/null
    read -r kb secs <"$WORK/time"
    rec "rss_$1" "$kb"
    rec "wall_$1" "$secs"
    rec "alloc_$1" "$(du -k "$WORK/mem/rpi3b.img" | cut -f1)"
}
rss 128m "$WORK/rpi3b-128m.toml"
rss 256m rpi3b
rss 2g "$WORK/rpi3b-2g.toml"

DIFF_ROW=""
if [ "$HAS_DIFF" = 1 ]; then
    log "pimg diff vs diffoscope on two builds with different epochs..."
    SOURCE_DATE_EPOCH=1710000000 "$PIMG" build --no-cache --board rpi3b --inputs "$INPUTS" --out "$WORK/other" >/dev/null
    timed pimg_diff sh -c "'$PIMG' diff '$WORK/ref/rpi3b.img' '$WORK/other/rpi3b.img' >/dev/null || true"
    if command -v diffoscope >/dev/null 2>&1; then
        s=$EPOCHREALTIME
        rc=0
        timeout "$DIFFOSCOPE_TIMEOUT" diffoscope --no-progress "$WORK/ref/rpi3b.img" "$WORK/other/rpi3b.img" \
            >"$WORK/diffoscope.txt" 2>&1 || rc=$?
        if [ "$rc" = 124 ]; then
            DIFFOSCOPE="> $DIFFOSCOPE_TIMEOUT s (stopped)"
        else
            rec diffoscope "$(awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.4f", e-s}')"
        fi
    fi
fi

BOOT_S=""
if [ "$HAS_BOOT" = 1 ]; then
    log "pimg boot (one run)..."
    s=$EPOCHREALTIME
    if "$PIMG" boot "$WORK/ref/rpi3b.img" >"$WORK/boot.log" 2>&1; then
        BOOT_S=$(awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.1f", e-s}')
    else
        BOOT_S="failed (see pimg boot output)"
    fi
fi

JOB_S=""
if [ "$FULL" = 1 ]; then
    # --no-fail-fast: the time of every test, even when one test binary fails.
    log "the whole main job: cargo test --release --locked --no-fail-fast ..."
    s=$EPOCHREALTIME
    rc=0
    (cd "$ROOT" && cargo test --release --locked --no-fail-fast >"$WORK/job.log" 2>&1) || rc=$?
    JOB_S=$(awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.0f s", e-s}')
    if [ "$rc" != 0 ]; then
        failed=$(grep -c '^test .* FAILED$' "$WORK/job.log" || true)
        JOB_S="$JOB_S (exit $rc: $failed failing tests, listed above the table)"
        grep -E '^test .* FAILED$|^error: .*target' "$WORK/job.log" >&2 || true
    fi
fi

# ---- the table ----------------------------------------------------------------------------
gi=$(med genimage) gy=$(med g_sync) gs=$(med g_sha256sum)
gis=$(awk -v a="$gi" -v b="$gy" -v c="$gs" 'BEGIN{printf "%.4f", a+b+c}')
pim=$(med pimg_image) pt=$(med pimg_total) piw=$(med pimg_img_write) pih=$(med pimg_img_hash)
piy=$(med pimg_img_sync)
ptar=$(med pimg_tarball) pres=$(med pimg_resolve)
ai=$(med alpine_image) rt=$(med rpi_tar)
hs=$(med sha256sum) ho=$(med openssl)

table_head
r=$(ratio "$pim" "$gis")
row "disk image: pimg image phase (FAT write $(secs "$piw") + fsync $(secs "$piy") + SHA-256 $(secs "$pih")) vs genimage + sync + sha256sum" "$(secs "$pim")" "$(secs "$gi") + $(secs "$gy") + $(secs "$gs")" "$r" "≤ 1.00" "$(verdict "$r" 1.00)"
r=$(ratio "$pt" "$gis")
row "disk image: whole pimg build (every output, from the .debs) vs genimage + sync + sha256sum" "$(secs "$pt")" "$(secs "$gis")" "$r" "" "info"
r=$(ratio "$piw" "$ai")
row "disk image: pimg FAT write vs mkfs.vfat --invariant + mcopy -s + sfdisk + dd" "$(secs "$piw")" "$(secs "$ai")" "$r" "" "info"
initramfs_rows
build_rows
r=$(ratio "$ptar" "$rt")
row "rpi tarball: pimg vs tar --sort=name --mtime\|gzip -9n" "$(secs "$ptar")" "$(secs "$rt")" "$r" "" "info"
hc=$(med openssl_cold)
gbs() { awk -v b="$IMG_SIZE" -v t="$1" 'BEGIN{ if (t == "" || t == 0) print "n/a"; else printf "%.2f GB/s", b/t/1e9 }'; }
r=$(ratio "$pih" "$hc")
row "hashing the just-written $((IMG_SIZE / MB)) MiB image (holes not yet in the page cache): pimg (in build) vs openssl dgst -sha256 (SHA-NI) on a fresh sparse copy" "$(secs "$pih") ($(gbs "$pih"))" "$(secs "$hc") ($(gbs "$hc"))" "$r" "≤ 1.50" "$(verdict "$r" 1.50)"
r=$(ratio "$pih" "$hs")
row "hashing: pimg (in build) vs sha256sum (cached)" "$(secs "$pih")" "$(secs "$hs") ($(gbs "$hs"))" "$r" "" "info"
if [ "$HAS_VERIFY" = 1 ]; then
    vs=$(med verify_sums) sc=$(med sha256sum_c)
    r=$(ratio "$vs" "$ho")
    row "hashing the cached image: pimg verify --sums vs openssl dgst -sha256 (SHA-NI)" "$(secs "$vs") ($(gbs "$vs"))" "$(secs "$ho") ($(gbs "$ho"))" "$r" "≤ 1.50" "$(verdict "$r" 1.50)"
    r=$(ratio "$vs" "$hs")
    row "hashing the cached image: pimg verify --sums vs sha256sum" "$(secs "$vs")" "$(secs "$hs")" "$r" "" "info"
    r=$(ratio "$(med verify_all)" "$sc")
    row "checking all outputs: pimg verify DIR (sums, buildinfo, every file in the FAT) vs sha256sum -c" "$(secs "$(med verify_all)")" "$(secs "$sc")" "$r" "" "info"
else
    row "hashing: pimg verify" "n/a (no verify subcommand)" "" "" "" "n/a"
fi
if [ "$HAS_DIFF" = 1 ]; then
    pd=$(med pimg_diff) dd_=$(med diffoscope)
    r=$(ratio "$pd" "$dd_")
    if [ -n "$dd_" ]; then other=$(secs "$dd_"); else other=${DIFFOSCOPE:-not installed}; fi
    row "diff of two images (other epoch), one run: pimg diff vs diffoscope" "$(secs "$pd")" "$other" "$r" "" "info"
else
    row "diff: pimg diff vs diffoscope" "n/a (no diff subcommand)" "" "" "" "n/a"
fi
limit_kb=$((64 * 1024 + LARGEST_INPUT / 1024))
for sz in 128m 256m 2g; do
    kb=$(sort -n "$M/rss_$sz" | tail -n 1)
    r=$(ratio "$kb" "$limit_kb")
    row "peak RSS, $sz image (allocated on disk $(($(med alloc_$sz | cut -d. -f1) / 1024)) MiB, build $(secs "$(med wall_$sz)"))" "$((kb / 1024)) MiB" "limit $((limit_kb / 1024)) MiB" "$r" "≤ 1.00" "$(verdict "$r" 1.00)"
done
g128=$(sort -n "$M/rss_128m" | tail -n 1) g2=$(sort -n "$M/rss_2g" | tail -n 1)
r=$(ratio "$g2" "$g128")
row "peak RSS growth, 2 GiB vs 128 MiB image" "" "" "$r" "≤ 1.10" "$(verdict "$r" 1.10)"
row "wall: pimg build rpi3b (reading inputs $(secs "$pres"))" "$(secs "$pt")" "" "" "" "info"
row "wall: pimg boot (QEMU raspi3b, one run)" "${BOOT_S:-n/a}${BOOT_S:+ s}" "" "" "" "info"
row "wall: whole main job (cargo test --release --locked --no-fail-fast; pimg already built)" "${JOB_S:-not run (--full)}" "" "" "" "info"
echo
echo "reproducible (same bytes): pimg across TZ (UTC vs Asia/Kathmandu): $PIMG_TZ;" \
    "genimage again 3 s later / across TZ: $G_REPRO;" \
    "Alpine pipeline again 3 s later / across TZ: $A_REPRO"
