#!/usr/bin/env bash
# bench/gpu.sh: a thin wrapper around bench/gpu.py (see its docstring and bench/README.md); every
# argument goes through. Python: $PYTHON, else the repo's .venv when there is one, else python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    if [[ -x "$here/../.venv/bin/python" ]]; then py="$here/../.venv/bin/python"; else py=python3; fi
fi
export PYTHONUNBUFFERED=1
exec "$py" "$here/gpu.py" "$@"
