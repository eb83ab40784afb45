#!/usr/bin/env bash
# Runs every reader entry point of pimg (inspect, diff, check, verify, build) on a corpus of
# hostile inputs that it makes itself, each under /usr/bin/time and `timeout`, and prints one
# line per run (exit status, seconds, peak memory) and the worst of each. Exits 1 if a run
# hangs past the time limit, takes more than the memory limit, or dies of a signal (a panic
# is exit 101 and counts too); refusals with a message are what is expected.
#
#   scripts/hostile.sh [PIMG]      (default: target/release/pimg, built if missing)
#
# Needs the real inputs (qemu/setup.sh) for a good image to damage, and gzip, python3 and
# /usr/bin/time (all installed by qemu/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

pimg="${1:-target/release/pimg}"
if [ ! -x "$pimg" ]; then
    [ $# -eq 0 ] || { echo "hostile.sh: $pimg is not an executable" >&2; exit 2; }
    cargo build --release --locked
fi
pimg="$(realpath "$pimg")"
limit_s=10
build_limit_s=60
limit_kib=$((256 * 1024))
for tool in /usr/bin/time gzip python3 timeout mkfifo; do
    command -v "$tool" >/dev/null || { echo "hostile.sh: $tool is missing; run qemu/setup.sh" >&2; exit 2; }
done
[ -d inputs ] || { echo "hostile.sh: no inputs folder; run qemu/setup.sh" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "hostile.sh: building the good image to damage"
"$pimg" build --board rpi3b --inputs "$OLDPWD/inputs" --out good --no-cache \
    --source-date-epoch 1700000000 >/dev/null 2>good.err || {
    cat good.err >&2
    exit 2
}
img=good/rpi3b.img

# The corpus: files of at most 16 MiB (the sparse image is 1 GiB only in its apparent size;
# the gzip bombs, 3 GiB of zeros each, are about 14 MiB; the package with its 512 MiB member
# about 0.5 MiB).
head -c $((16 << 20)) /dev/urandom >junk.bin
head -c $((16 << 20)) /dev/urandom >junk2.bin
head -c $((16 << 20)) "$img" >truncated.img
head -c $((3 << 30)) /dev/zero | gzip -1 >bomb-a.gz
{ head -c $((3 << 30)) /dev/zero; printf x; } | gzip -1 >bomb-b.gz
truncate -s 1G sparse.img
mkfifo fifo.img
python3 - "$img" <<'EOF'
import sys, struct
img = open(sys.argv[1], 'rb').read(16 << 20)
# A second MBR entry over the boot partition, and one past the disk's end.
start = struct.unpack_from('<I', img, 454)[0]
over = bytearray(img); over[466] = 0x83; struct.pack_into('<II', over, 470, start + 8, 64)
open('overlap.img', 'wb').write(over)
past = bytearray(img); past[466] = 0x83; struct.pack_into('<II', past, 470, 1 << 30, 1 << 30)
open('past-end.img', 'wb').write(past)
# config.txt's FAT links looping: every FAT32 entry after the root points at cluster 3.
loop = bytearray(img); o = start * 512
bps = struct.unpack_from('<H', loop, o + 11)[0]; fat = o + struct.unpack_from('<H', loop, o + 14)[0] * bps
for c in range(3, 64):
    struct.pack_into('<I', loop, fat + 4 * c, 3)
open('fat-loop.img', 'wb').write(loop)
EOF
# Forged published folders: a buildinfo whose outputs and inputs name host files and a
# device, with the SBOM replaced by a FIFO and the apkovl by a link to a host file; and a
# SHA256SUMS naming files outside the folder and a FIFO.
mkdir forged forged-sums
cp good/* forged/
cp good/* forged-sums/
python3 - <<'EOF'
import json
info = json.load(open('forged/rpi3b.buildinfo.json'))
for name in ['/etc/passwd', '../../../../etc/shadow', '/dev/zero']:
    info['outputs'].append(dict(info['outputs'][0], name=name))
info['inputs'][0]['file'] = '../../../../etc/passwd'
json.dump(info, open('forged/rpi3b.buildinfo.json', 'w'))
sums = open('forged-sums/SHA256SUMS').read()
sums += '0' * 64 + '  /etc/passwd\n' + '0' * 64 + '  ../outside\n' + '0' * 64 + '  fifo\n'
open('forged-sums/SHA256SUMS', 'w').write(sums)
EOF
mkfifo forged-sums/fifo
rm forged/rpi3b.spdx.json && mkfifo forged/rpi3b.spdx.json
rm forged/pimg.apkovl.tar.gz && ln -s /etc/passwd forged/pimg.apkovl.tar.gz
# Inputs: a package whose boot-partition member is 512 MiB; an overlay with a sparse file.
mkdir -p bad-inputs overlay/etc
cp "$OLDPWD"/inputs/*.deb bad-inputs/
rm bad-inputs/raspi-firmware_*
python3 - <<'EOF'
import io, tarfile, gzip
def tgz(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode='w') as t:
        for name, size, data in members:
            ti = tarfile.TarInfo(name); ti.size = size; ti.mtime = 1600000000
            t.addfile(ti, data)
    return gzip.compress(b.getvalue(), 1)
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
control = b'Package: raspi-firmware\nVersion: 1\nArchitecture: all\nDescription: x\n'
data = tgz([('usr/lib/raspi-firmware/start.elf', 512 << 20, Zeros(512 << 20))])
ctl = tgz([('control', len(control), io.BytesIO(control))])
out = b'!<arch>\n'
for name, d in [('debian-binary', b'2.0\n'), ('control.tar.gz', ctl), ('data.tar.gz', data)]:
    out += b'%-16s%-12d%-6d%-6d%-8s%-10d`\n' % (name.encode(), 0, 0, 0, b'100644', len(d)) + d
    if len(d) % 2: out += b'\n'
open('bad-inputs/raspi-firmware_1.20240424+ds-6_all.deb', 'wb').write(out)
EOF
echo pimg >overlay/etc/hostname
truncate -s 1G overlay/etc/sparse

worst_s=0
worst_kib=0
status=0
printf '%-44s %5s %8s %9s\n' "run" "exit" "seconds" "peak MiB"
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
try() { # label, pimg arguments...
    local label=$1 rc limit_s=$limit_s
    shift
    # A build reads the real kernel package too (about 10 s without the cache).
    if [ "$1" = build ]; then limit_s=$build_limit_s; fi
    set +e
    /usr/bin/time -o time.out -f '%e %M' timeout $((limit_s * 3)) "$pimg" "$@" >out.txt 2>err.txt </dev/null
    rc=$?
    set -e
    read -r secs kib < <(tail -n 1 time.out) || true
    secs=${secs:-0} kib=${kib:-0}
    printf '%-44s %5s %8s %9s\n' "$label" "$rc" "$secs" "$((kib / 1024))"
    if [ "$rc" -eq 124 ] || [ "$rc" -ge 101 ] || [ "$kib" -gt "$limit_kib" ] ||
        gt "$secs" "$limit_s"; then
        echo "  OVER A LIMIT (${limit_s} s, $((limit_kib / 1024)) MiB, no panic or signal):" \
            "$(head -c 300 err.txt)"
        status=1
    fi
    if gt "$secs" "$worst_s"; then worst_s=$secs; fi
    if [ "$kib" -gt "$worst_kib" ]; then worst_kib=$kib; fi
}

for f in junk.bin truncated.img overlap.img past-end.img fat-loop.img sparse.img fifo.img \
    bomb-a.gz /dev/zero; do
    try "inspect $f" inspect "$f"
    try "check $f" check --model pi3b "$f"
done
try "diff junk.bin junk2.bin" diff junk.bin junk2.bin
try "diff bomb-a.gz bomb-b.gz" diff bomb-a.gz bomb-b.gz
try "diff truncated.img fat-loop.img" diff truncated.img fat-loop.img
try "diff /dev/zero $img" diff /dev/zero "$img"
try "verify forged/" verify forged
try "verify forged-sums/" verify forged-sums
try "verify --sums forged-sums/SHA256SUMS" verify --sums forged-sums/SHA256SUMS
try "verify --rebuild forged buildinfo" verify --rebuild forged/rpi3b.buildinfo.json \
    --inputs "$OLDPWD/inputs"
try "build, 512 MiB member" build --board rpi3b --inputs bad-inputs --out o1 --no-cache \
    --source-date-epoch 1700000000
try "build, sparse overlay" build --board rpi3b --inputs "$OLDPWD/inputs" --overlay ./overlay \
    --out o2 --no-cache --source-date-epoch 1700000000
printf 'worst: %s s, %s MiB (limits %s s, %s MiB)\n' "$worst_s" "$((worst_kib / 1024))" \
    "$limit_s" "$((limit_kib / 1024))"
exit $status
