#!/bin/sh
# narhub installer for Raspberry Pi OS / Debian. Idempotent: run it again to upgrade.
#
#   deploy/install.sh [--root DIR] [--source DIR] [--no-systemctl]
#   deploy/install.sh --uninstall [--purge] [--root DIR]
#
# --root DIR     install into DIR as a system root (image building, tests); default /
# --source DIR   the narhub source tree to install (default: this script's repository)
# --no-systemctl do not run systemctl (implied when --root is not /)
# --uninstall    remove the service and the program; keeps /etc/narhub and /var/lib/narhub
# --purge        with --uninstall: also remove the configuration, the data and the user
set -eu

ROOT=/
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
SYSTEMCTL=1
ACTION=install
PURGE=0
PYTHON=${PYTHON:-python3}

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --source) SOURCE=$2; shift 2 ;;
        --no-systemctl) SYSTEMCTL=0; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT=${ROOT%/}
[ "$ROOT" = "" ] || SYSTEMCTL=0
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
command -v systemctl >/dev/null 2>&1 || SYSTEMCTL=0

USER_NAME=narhub
ETC=$ROOT/etc/narhub
DATA=$ROOT/var/lib/narhub
OPT=$ROOT/opt/narhub
UNIT=$ROOT/etc/systemd/system/narhub.service
JOURNALD=$ROOT/etc/systemd/journald.conf.d/narhub.conf

say() { echo "narhub install: $*"; }

# Groups and the system user. On the running system: groupadd/useradd. In another root
# (an image being built): the same entries written into its /etc files.
ensure_group() {
    if [ "$ROOT" = "" ]; then
        getent group "$1" >/dev/null || groupadd --system "$1"
    else
        mkdir -p "$ROOT/etc"; touch "$ROOT/etc/group"
        grep -q "^$1:" "$ROOT/etc/group" || {
            gid=$(awk -F: 'BEGIN{m=999} $3>=100 && $3<1000 && $3<m {m=$3} END{print m-1}' "$ROOT/etc/group")
            echo "$1:x:$gid:" >> "$ROOT/etc/group"
        }
    fi
}

ensure_user() {
    ensure_group "$USER_NAME"
    if [ "$ROOT" = "" ]; then
        id "$USER_NAME" >/dev/null 2>&1 || useradd --system --gid "$USER_NAME" \
            --home-dir /var/lib/narhub --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
        for g in bluetooth dialout; do
            ensure_group "$g"
            id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$g" || usermod -aG "$g" "$USER_NAME"
        done
    else
        touch "$ROOT/etc/passwd"
        grep -q "^$USER_NAME:" "$ROOT/etc/passwd" || {
            gid=$(awk -F: -v n="$USER_NAME" '$1==n {print $3}' "$ROOT/etc/group")
            echo "$USER_NAME:x:$gid:$gid:narhub:/var/lib/narhub:/usr/sbin/nologin" >> "$ROOT/etc/passwd"
        }
        for g in bluetooth dialout; do
            ensure_group "$g"
            line=$(grep "^$g:" "$ROOT/etc/group")
            case ",${line##*:}," in
                *",$USER_NAME,"*) ;;
                ",,") sed -i "s/^$g:\(.*\):$/$g:\1:$USER_NAME/" "$ROOT/etc/group" ;;
                *) sed -i "s/^\($g:.*\)$/\1,$USER_NAME/" "$ROOT/etc/group" ;;
            esac
        done
    fi
}

owner_ids() {  # uid:gid of the narhub user in the target root
    if [ "$ROOT" = "" ]; then echo "$(id -u "$USER_NAME"):$(getent group "$USER_NAME" | cut -d: -f3)"
    else awk -F: -v n="$USER_NAME" '$1==n {print $3":"$4}' "$ROOT/etc/passwd"; fi
}

install_all() {
    ensure_user
    ids=$(owner_ids)
    install -d -m 0755 "$ROOT/etc/systemd/system" "$ROOT/etc/systemd/journald.conf.d" "$OPT"
    install -d -m 0750 "$ETC" "$DATA"
    chown "root:${ids#*:}" "$ETC"
    chown "$ids" "$DATA"
    if [ ! -x "$OPT/venv/bin/python" ]; then
        say "creating the virtualenv in /opt/narhub/venv"
        "$PYTHON" -m venv "$OPT/venv"
    fi
    say "installing narhub from $SOURCE"
    "$OPT/venv/bin/python" -m pip install --quiet --disable-pip-version-check ${NARHUB_PIP_OPTIONS:-} "$SOURCE"
    # The venv must work at its final path: a venv built under --root points at $ROOT/opt.
    install -m 0644 "$SOURCE/README.md" "$OPT/README.md"
    install -m 0644 "$SOURCE/deploy/systemd/narhub.service" "$UNIT"
    install -m 0644 "$SOURCE/deploy/journald-narhub.conf" "$JOURNALD"
    if [ ! -e "$ETC/narhub.toml" ]; then
        say "no configuration yet: run \`narhub init\` as root, then \`narhub keys create\`"
    fi
    if [ "$SYSTEMCTL" = 1 ]; then
        systemctl daemon-reload
        systemctl enable narhub.service >/dev/null
        systemctl try-restart systemd-journald.service || true
        if [ -e "$ETC/narhub.toml" ]; then systemctl restart narhub.service; fi
    fi
    say "done"
}

uninstall_all() {
    if [ "$SYSTEMCTL" = 1 ]; then
        systemctl disable --now narhub.service 2>/dev/null || true
    fi
    rm -f "$UNIT" "$JOURNALD"
    rm -rf "$OPT"
    [ "$SYSTEMCTL" = 1 ] && systemctl daemon-reload || true
    if [ "$PURGE" = 1 ]; then
        rm -rf "$ETC" "$DATA"
        if [ "$ROOT" = "" ]; then
            id "$USER_NAME" >/dev/null 2>&1 && userdel "$USER_NAME" || true
        else
            sed -i "/^$USER_NAME:/d" "$ROOT/etc/passwd" "$ROOT/etc/group"
        fi
        say "removed the program, configuration, data and user"
    else
        say "removed the program; kept /etc/narhub and /var/lib/narhub (use --purge to remove)"
    fi
}

case "$ACTION" in
    install) install_all ;;
    uninstall) uninstall_all ;;
esac
