#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the engine tests, the Blender 5.0 tests,
# and the Blender tests marked "lts" under the 4.2 LTS line (bpy 4.2.23 in .venv-bpy42).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

bash scripts/setup.sh --no-demo

if [ ! -x .venv-bpy42/bin/python ]; then
    "$PYTHON" -m venv .venv-bpy42
fi
.venv-bpy42/bin/python -m pip install -q --disable-pip-version-check \
    "bpy==4.2.23" "numpy<2" "opencv-python-headless<4.12" pytest "PyYAML==6.0.4"

.venv/bin/python -m pytest tests -q "$@"
# Blender 4.2 LTS: the same add-on, with the worker running in .venv (which has torch).
GAN_STYLE_TEST_WORKER_PYTHON="$PWD/.venv/bin/python" \
    .venv-bpy42/bin/python -m pytest tests/blender -q -m lts "$@"
