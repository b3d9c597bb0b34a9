#!/bin/sh
# Install the gateway on a Raspberry Pi / CM4 (run as root), or into $DESTDIR for packaging and
# tests. Idempotent: files already identical are left untouched; an existing config is kept.
#   DESTDIR   staging root (default: empty = the live system; then users, venv, systemd, udev)
#   PREFIX    where the program lives (default /opt/gateway)
#   PYTHON    interpreter for the virtualenv (default python3)
set -eu

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/opt/gateway}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
USER_NAME=gateway
CONFIG=/etc/gateway/gateway.toml
DATA=/var/lib/gateway

say() { printf 'install: %s\n' "$*"; }

# install_file SOURCE DEST MODE: copy only when the content or mode differs.
install_file() {
    target="$DESTDIR$2"
    if [ -f "$target" ] && cmp -s "$1" "$target" && [ "$(stat -c %a "$target")" = "${3#0}" ]; then
        say "unchanged $2"
        return
    fi
    install -D -m "$3" "$1" "$target"
    say "installed $2"
}

install_tree() {
    # The program's own files (docs, profiles) that the live install serves from $PREFIX.
    install -d -m 0755 "$DESTDIR$PREFIX/docs" "$DESTDIR$PREFIX/board/profiles"
    for f in "$SRC"/docs/install.md "$SRC"/docs/sd-card.md; do
        [ -f "$f" ] && install_file "$f" "$PREFIX/docs/$(basename "$f")" 0644
    done
    for f in "$SRC"/board/profiles/*.json; do
        install_file "$f" "$PREFIX/board/profiles/$(basename "$f")" 0644
    done
}

install_system_files() {
    grep -v '^#' "$HERE/files.txt" | while read -r src dst mode; do
        [ -n "$src" ] && install_file "$HERE/$src" "$dst" "$mode"
    done
}

install_config() {
    install -d -m 0750 "$DESTDIR/etc/gateway" "$DESTDIR$DATA"
    if [ -e "$DESTDIR$CONFIG" ]; then
        say "kept existing $CONFIG"
    else
        install -m 0640 "$HERE/gateway.toml.template" "$DESTDIR$CONFIG"
        say "installed $CONFIG from template: edit gateway_id and buses before starting"
    fi
}

live_system() {
    getent group gpio >/dev/null || groupadd --system gpio
    if ! id "$USER_NAME" >/dev/null 2>&1; then
        useradd --system --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin \
            --groups dialout,gpio "$USER_NAME"
        say "created user $USER_NAME"
    fi
    usermod -a -G dialout,gpio "$USER_NAME"
    chown -R "$USER_NAME:$USER_NAME" "$DATA"
    chown "root:$USER_NAME" /etc/gateway "$CONFIG"
    if [ ! -x "$PREFIX/venv/bin/python" ]; then
        "$PYTHON" -m venv "$PREFIX/venv"
    fi
    "$PREFIX/venv/bin/pip" install --quiet --upgrade "$SRC[pi]"
    say "installed the gateway package into $PREFIX/venv"
    systemctl daemon-reexec  # picks up RuntimeWatchdogSec from system.conf.d
    systemctl restart systemd-journald
    udevadm control --reload-rules
    udevadm trigger --subsystem-match=tty --subsystem-match=gpio --subsystem-match=leds
    systemctl enable gateway.service
    say "enabled gateway.service; start it with: systemctl start gateway"
}

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    echo "install: run as root (sudo make install), or set DESTDIR for a staged install" >&2
    exit 1
fi
install_system_files
install_tree
install_config
if [ -z "$DESTDIR" ]; then
    live_system
else
    say "DESTDIR set: skipped user, virtualenv, systemctl and udevadm"
fi
