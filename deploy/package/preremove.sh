#!/bin/sh
# preremove of the phonehome .deb (prerm: "remove", "upgrade" NEW, ...)
# and .rpm (%preun: 0 on removal, 1 on upgrade). On removal: stop the
# service and disable it. On an upgrade: nothing (the new postinstall
# restarts a running service). The user, /var/lib/phonehome (the
# inventory) and /var/log/phonehome are kept.
set -e

case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac

root=${DPKG_ROOT:-} # see postinstall.sh
if command -v systemctl >/dev/null 2>&1; then
	if [ -d "$root/run/systemd/system" ]; then
		systemctl stop phonehome.service || true
	fi
	systemctl ${root:+--root "$root"} --no-reload disable phonehome.service >/dev/null 2>&1 || true
fi
exit 0
