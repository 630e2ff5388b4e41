#!/bin/sh
# Type-check firmware/ against the MicroPython stubs; run from the repository root.
#
# micropython-rp2-stubs installs bare .pyi modules (machine.pyi, micropython.pyi, ...) into
# site-packages, which mypy will not search; this links the files listed in its RECORD into
# .mypy_cache/firmware-stubs and puts that on the search path. micropython-stdlib-stubs
# replaces CPython's typeshed (--custom-typeshed-dir).
set -eu
VENV="${VENV:-.venv}"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
STUBS=.mypy_cache/firmware-stubs
rm -rf "$STUBS"
mkdir -p "$STUBS"
for record in "$SITE"/micropython_rp2_stubs-*.dist-info/RECORD; do
    cut -d, -f1 "$record" | grep '\.pyi$' | while read -r f; do
        mkdir -p "$STUBS/$(dirname "$f")"
        ln -sf "$SITE/$f" "$STUBS/$f"
    done
done
MYPYPATH="firmware:firmware/boards/rp2040:$STUBS" exec "$VENV/bin/mypy" \
    --config-file firmware/mypy.ini --custom-typeshed-dir "$SITE" "$@"
