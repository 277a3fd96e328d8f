#!/bin/sh
# postinstall of the phonehome .deb (postinst: "configure" [old version])
# and .rpm (%post: 1 on install, 2 on upgrade). Creates the system user
# phonehome and its directories; reloads systemd if it is running. It never
# enables nor starts the service: set PHONEHOME_ARGS in
# /etc/default/phonehome first, then `systemctl enable --now phonehome`.
# On an upgrade a running service is restarted (try-restart: a stopped
# one stays stopped).
set -e

case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;; # abort-upgrade, abort-remove, ...: nothing to do
esac

# DPKG_ROOT: dpkg --root=DIR --force-script-chrootless runs this script on
# the host for a system in DIR (go test ./deploy does, as root).
root=${DPKG_ROOT:-}
rootopt=
if [ -n "$root" ]; then
	rootopt="--root $root"
	has() { grep -q "^$2:" "$root/etc/$1"; }
else
	has() { getent "$1" "$2" >/dev/null; }
fi

if ! has group phonehome; then
	groupadd $rootopt --system phonehome
fi
if ! has passwd phonehome; then
	nologin=/usr/sbin/nologin
	[ -x "$root$nologin" ] || [ ! -x "$root/sbin/nologin" ] || nologin=/sbin/nologin
	useradd $rootopt --system --gid phonehome --home-dir /var/lib/phonehome \
		--no-create-home --shell "$nologin" \
		--comment "phonehome passive network sensor" phonehome
fi
owner=phonehome
group=phonehome
if [ -n "$root" ]; then # names of DIR's users mean nothing on the host
	owner=$(awk -F: '$1 == "phonehome" { print $3 }' "$root/etc/passwd")
	group=$(awk -F: '$1 == "phonehome" { print $3 }' "$root/etc/group")
fi

# The unit's StateDirectory= and LogsDirectory= would create them too;
# made here so that `phonehome report` and logrotate work before the
# first start. Existing ones are left as they are.
for d in /var/lib/phonehome /var/log/phonehome; do
	if [ ! -d "$root$d" ]; then
		install -d -m 0750 -o "$owner" -g "$group" "$root$d"
	fi
done

upgrade=
case "$1" in
configure) [ -n "${2:-}" ] && upgrade=1 ;;
2) upgrade=1 ;;
esac

if [ -d "$root/run/systemd/system" ]; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart phonehome.service || true
	fi
fi
exit 0
