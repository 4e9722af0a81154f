#!/usr/bin/env bash
# Create the virtualenv and install the project with its test dependencies.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch: the CPU build only (an unpinned torch pulls several GB of CUDA wheels), installed first
# so that nothing else resolves another build.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
