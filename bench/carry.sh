#!/usr/bin/env bash
# bench/carry.sh: the Python packages the lent GPU machine lacks, carried as wheels, installed offline there.
#
#   bench/carry.sh fetch [PYVER]      here, with PyPI: wheels for Python PYVER (default 3.12, the GPU
#                                     machine's) into $CARRY_DIR (default .whl, ignored by git)
#   bench/carry.sh install [TARGET]   there, no network: pip install --no-index --no-deps into TARGET
#                                     (default /tmp/site); then PYTHONPATH=TARGET
#
# pydantic and friends come as binary wheels pinned to the versions this venv runs. airbench 0.1.8 is
# only an sdist on PyPI, and building an sdist offline fails (pip wants setuptools from an index), so
# `fetch` builds its wheel here (pure Python, py3-none-any) and only wheels travel.
# Python: $PYTHON, else the repo's .venv, else python3 (fetch); $PYTHON, else python3 (install).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CARRY_DIR:-$root/.whl}"
PINNED=(pydantic pydantic-core annotated-types typing-inspection typing-extensions tomli-w)
AIRBENCH=airbench==0.1.8

fetch() {
    local pyver="${1:-3.12}" py="${PYTHON:-}"
    if [[ -z "$py" ]]; then
        if [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"; else py=python3; fi
    fi
    mkdir -p "$dir"
    local pins
    pins=$("$py" -c 'import sys, importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in sys.argv[1:]))' "${PINNED[@]}")
    # shellcheck disable=SC2086
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$dir" $pins
    local sdist
    sdist="$(mktemp -d)"
    "$py" -m pip download -q --no-deps --no-binary=:all: -d "$sdist" "$AIRBENCH"
    "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$dir" "$sdist"/airbench-*.tar.gz
    rm -rf "$sdist"
    ls "$dir"
}

install() {
    local target="${1:-/tmp/site}"
    "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --target "$target" "$dir"/*.whl
}

case "${1:-}" in
    fetch) shift; fetch "$@" ;;
    install) shift; install "$@" ;;
    *) echo "usage: bench/carry.sh fetch [PYVER] | install [TARGET]" >&2; exit 2 ;;
esac
