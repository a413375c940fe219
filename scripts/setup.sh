#!/usr/bin/env bash
# One command from a fresh clone: a virtual environment (.venv) with the pinned dependencies,
# then the headless demo (train a style on a sample clip and apply it in a .blend).
#   bash scripts/setup.sh            setup + demo
#   bash scripts/setup.sh --no-demo  setup only
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python -c "import torch, cv2, numpy, bpy; print('environment ready: torch', torch.__version__, '| opencv', cv2.__version__, '| numpy', numpy.__version__, '| Blender', bpy.app.version_string)"

if [ "${1:-}" != "--no-demo" ]; then
    .venv/bin/python scripts/demo.py
fi
