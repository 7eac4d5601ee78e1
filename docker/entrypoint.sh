#!/bin/sh
# Image entrypoint, mirroring KrakenD's: the config folder is mounted at /etc/krakend (the
# working directory), so `docker run IMAGE run -c krakend.json`, `docker run IMAGE watch` and
# `docker run IMAGE -d ...` behave as with the KrakenD image; any other command is run as is.
#
#   watch [ARGS...]         tidegate run --watch -c "${KRAKEND_CONFIG:-krakend.json}" ARGS...
#   -FLAG [ARGS...]         tidegate run -c "${KRAKEND_CONFIG:-krakend.json}" -FLAG ARGS...
#                           (extra flags for the default command: `-d`, `-p 9000`, `-h`...)
#   run|check|render|version|schema|audit [ARGS...]   tidegate "$@"
#   anything else           exec'd unchanged (sh, ls, ...)
#
# FC_* (flexible configuration) and KRAKEND_* variables reach tidegate through the environment.
# TIDEGATE_BIN overrides the tidegate command; it is split on whitespace (never glob-expanded),
# so it may carry arguments ("python3 -m tidegate") but its words cannot contain spaces.
set -eu

tidegate_bin=${TIDEGATE_BIN:-tidegate}

run_tidegate() {
    set -f
    # shellcheck disable=SC2086 # word splitting of TIDEGATE_BIN is intended
    exec $tidegate_bin "$@"
}

if [ "$#" -eq 0 ]; then
    run_tidegate
fi

case "$1" in
    watch)
        shift
        run_tidegate run --watch -c "${KRAKEND_CONFIG:-krakend.json}" "$@"
        ;;
    -*)
        run_tidegate run -c "${KRAKEND_CONFIG:-krakend.json}" "$@"
        ;;
    run | check | render | version | schema | audit)
        run_tidegate "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
