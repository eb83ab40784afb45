#!/bin/sh
# pimg initramfs: diskless boot in Alpine's style. Mount the boot media, unpack the one
# top-level <hostname>.apkovl.tar.gz into a tmpfs root, switch to it.
# Lines starting with "pimg:" are milestones that `pimg boot` watches for (see qemu/README.md).
export PATH=/bin
/bin/mount -t proc proc /proc
/bin/mount -t sysfs sysfs /sys
/bin/mount -t devtmpfs devtmpfs /dev 2>/dev/null
. /etc/pimg/initramfs.conf

say() { echo "pimg: $*"; }
fail() {
	say "FAILED: $*"
	say "dropping to a rescue shell"
	exec /bin/sh
}

say "init started (kernel $(uname -r))"
selfcheck=
case " $(cat /proc/cmdline) " in *" pimg.selfcheck=1 "*) selfcheck=1 ;; esac

while read -r module; do
	insmod "/lib/modules/$KERNEL_VERSION/$module" || fail "cannot load module $module"
done < /etc/pimg/modules
say "modules loaded"

# The boot partition may take a moment to appear after the SD host driver probes.
dev=
tries=0
while [ -z "$dev" ] && [ $tries -lt 100 ]; do
	dev=$(findfs "LABEL=$BOOT_LABEL" 2>/dev/null)
	[ -z "$dev" ] && [ -b /dev/mmcblk0p1 ] && dev=/dev/mmcblk0p1
	[ -z "$dev" ] && sleep 0.1
	tries=$((tries + 1))
done
[ -n "$dev" ] || fail "no partition labelled $BOOT_LABEL appeared"
mkdir -p /media/boot
mount -t vfat -o ro,codepage=437,iocharset=iso8859-1 "$dev" /media/boot || fail "cannot mount $dev"
say "boot media mounted $dev"

# Exactly one overlay at the top level; more than one is refused, as Alpine does.
set -- /media/boot/*.apkovl.tar.gz
[ -e "$1" ] || fail "no *.apkovl.tar.gz at the top of $dev"
[ $# -eq 1 ] || fail "more than one apkovl on $dev: $*"
ovl=$1

mount -t tmpfs -o mode=0755 tmpfs /newroot || fail "cannot mount the tmpfs root"
tar -C /newroot -zxf "$ovl" || fail "cannot unpack $ovl"
[ -d /newroot/root ] && chmod 700 /newroot/root
host=$(cat /newroot/etc/hostname 2>/dev/null)
say "apkovl applied ${ovl##*/} hostname=$host"

# The modloop (every module and the firmware) serves the booted system's /lib/modules and
# /lib/firmware, as Alpine's does; it stays mounted from the boot media.
if [ -n "$MODLOOP" ]; then
	mkdir -p /newroot/.modloop /newroot/lib
	mount -t squashfs -o ro,loop "/media/boot/$MODLOOP" /newroot/.modloop ||
		fail "cannot mount the modloop $MODLOOP"
	for d in modules firmware; do
		target=/.modloop/modules
		[ $d = firmware ] && target=/.modloop/modules/firmware
		[ -e /newroot/lib/$d ] || /bin/busybox ln -s $target /newroot/lib/$d
	done
	n=$(find /newroot/.modloop/modules/$KERNEL_VERSION -name '*.ko*' | wc -l)
	say "modloop mounted $MODLOOP modules=$n"
fi

# Self-check (only when `pimg boot` asks for it): report the SHA-256 of every file on the
# boot media and of every file the overlay put into the new root, then stop the machine
# once the overlay's own init has run.
if [ -n "$selfcheck" ]; then
	# The modloop is proven by its mount and the module loaded from it, not hashed here.
	(cd /media/boot && find . -type f ! -path "./$MODLOOP" | sort) | sed 's|^\./|/media/boot/|' > /tmp/files
	(cd /newroot && find . -path ./.modloop -prune -o -type f -print | sort) | sed 's|^\./|/newroot/|' >> /tmp/files
	# Two workers (the emulated board has four cores): the largest file alone, the rest in order.
	big= bigsize=-1
	while IFS= read -r f; do
		set -- $(ls -ln "$f")
		[ "$5" -gt "$bigsize" ] && big=$f bigsize=$5
	done < /tmp/files
	grep -vxF "$big" /tmp/files > /tmp/rest
	hash_files() {
		while IFS= read -r f; do
			h=$(sha256sum "$f") || { say "FAILED: cannot read $f"; continue; }
			case "$f" in
			/media/boot/*) say "sha256 ${h%% *} ${f#/media/boot/}" ;;
			*) say "ovl-sha256 ${h%% *} ${f#/newroot/}" ;;
			esac
		done
	}
	echo "$big" | hash_files &
	hash_files < /tmp/rest
	wait
	n=$(wc -l < /tmp/files)
	say "selfcheck done files=$n"
	# Run by the booted system's init: a module from the modloop, then stop.
	{
		echo "CHECK_MODULE=$CHECK_MODULE"
		cat <<'EOF'
if [ -n "$CHECK_MODULE" ]; then
	name=$(echo "$CHECK_MODULE" | sed s/-/_/g)
	if modprobe "$CHECK_MODULE" && grep -q "^$name " /proc/modules; then
		n=$(find /lib/firmware/ -type f -o -type l | wc -l)
		echo "pimg: modloop module loaded $CHECK_MODULE firmware=$n"
	else
		echo "pimg: FAILED: cannot load module $CHECK_MODULE from the modloop"
	fi
fi
echo "pimg: userspace ready hostname=$(hostname)"
exec /sbin/reboot -f
EOF
	} > /newroot/etc/pimg-selfcheck
	echo '::once:/bin/sh /etc/pimg-selfcheck' >> /newroot/etc/inittab
fi

for d in bin sbin usr/bin usr/sbin proc sys dev tmp media/boot; do mkdir -p "/newroot/$d"; done
cp /bin/busybox /newroot/bin/busybox
chroot /newroot /bin/busybox --install -s || fail "cannot install busybox into the new root"
mount --move /media/boot /newroot/media/boot
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
say "switching root"
exec switch_root /newroot /sbin/init
