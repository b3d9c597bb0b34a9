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
BIN_LINK=/usr/local/bin/gateway

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

# live COMMAND...: run it on the live system; under DESTDIR only say what would be run (the
# user and group gateway exist only on the target).
live() {
    if [ -z "$DESTDIR" ]; then
        "$@"
    else
        say "would run: $*"
    fi
}

# The service rewrites its config (console `config set`, `console passwd`: temp file + rename in
# /etc/gateway), so it owns the directory and the file; group gateway (technicians logging in
# over SSH for `gateway console`) may read them, nobody else. Applied again on every install.
config_permissions() {
    chmod 0750 "$DESTDIR/etc/gateway"
    chmod 0640 "$DESTDIR$CONFIG"
    live chown "$USER_NAME:$USER_NAME" /etc/gateway "$CONFIG"
    live chown -R "$USER_NAME:$USER_NAME" "$DATA"
}

# `gateway` on PATH for SSH users (gateway console, check-config, readings): a symlink into the
# virtualenv, whose script runs the virtualenv's python. Anything else already there is kept.
path_link() {
    link="$DESTDIR$BIN_LINK"
    want="$PREFIX/venv/bin/gateway"
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$want" ]; then
        say "unchanged $BIN_LINK"
    elif [ -e "$link" ] && [ ! -L "$link" ]; then
        say "WARNING: $BIN_LINK exists and is not a symlink: left alone; run $want instead"
    else
        install -d -m 0755 "$(dirname "$link")"
        ln -sfn "$want" "$link"
        say "installed $BIN_LINK -> $want"
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
    config_permissions
    if [ ! -x "$PREFIX/venv/bin/python" ]; then
        "$PYTHON" -m venv "$PREFIX/venv"
    fi
    "$PREFIX/venv/bin/pip" install --quiet --upgrade "$SRC[pi]"
    say "installed the gateway package into $PREFIX/venv"
    systemctl daemon-reexec  # picks up RuntimeWatchdogSec from system.conf.d
    systemctl restart systemd-journald
    systemctl restart systemd-modules-load.service \
        || say "WARNING: usbserial/cdc_acm not loaded now; they load at the next boot"
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
path_link
if [ -z "$DESTDIR" ]; then
    live_system
else
    config_permissions
    say "DESTDIR set: skipped user, virtualenv, systemctl and udevadm"
fi
say "SSH users who run 'gateway console' must be in group $USER_NAME:" \
    "usermod -a -G $USER_NAME USER, then log in again"
