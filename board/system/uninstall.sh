#!/bin/sh
# Remove what install.sh laid down. The config (/etc/gateway) and the data (/var/lib/gateway:
# readings not yet delivered, ledger) are kept unless PURGE=1.
set -eu

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/opt/gateway}"
PURGE="${PURGE:-0}"
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { printf 'uninstall: %s\n' "$*"; }

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    echo "uninstall: run as root (sudo make uninstall), or set DESTDIR" >&2
    exit 1
fi
if [ -z "$DESTDIR" ]; then
    systemctl disable --now gateway.service 2>/dev/null || true
fi
grep -v '^#' "$HERE/files.txt" | while read -r src dst mode; do
    if [ -n "$src" ] && [ -e "$DESTDIR$dst" ]; then
        rm -f "$DESTDIR$dst"
        say "removed $dst"
    fi
done
# The PATH symlink install.sh made; a different file of that name is not ours.
link="$DESTDIR/usr/local/bin/gateway"
if [ -L "$link" ] && [ "$(readlink "$link")" = "$PREFIX/venv/bin/gateway" ]; then
    rm -f "$link"
    say "removed /usr/local/bin/gateway"
fi
rm -rf "$DESTDIR$PREFIX"
say "removed $PREFIX"
if [ "$PURGE" = 1 ]; then
    rm -rf "$DESTDIR/etc/gateway" "$DESTDIR/var/lib/gateway"
    say "purged /etc/gateway and /var/lib/gateway"
    if [ -z "$DESTDIR" ] && id gateway >/dev/null 2>&1; then
        userdel gateway
        say "removed user gateway"
    fi
else
    say "kept /etc/gateway and /var/lib/gateway (PURGE=1 removes them)"
fi
if [ -z "$DESTDIR" ]; then
    systemctl daemon-reexec
    systemctl restart systemd-journald
    udevadm control --reload-rules
fi
