#!/usr/bin/env bash
# Create bench/.venv-peers: a separate interpreter holding the peer engines
# (xgrammar, llguidance, outlines-core) that bench/bench_regex.py compares against.
# It sees the system site-packages (numpy, torch CPU, tokenizers) so no GPU wheels
# are pulled; the peers themselves are installed with their pure-Python runtime deps.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEERS_VENV:-$HERE/../.venv-peers}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv --system-site-packages "$VENV"
fi
# keep the environment out of git without touching the repository's .gitignore
echo '*' > "$VENV/.gitignore"

PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# --no-deps: xgrammar declares torch/triton/transformers; torch (CPU) comes from the
# system site-packages and transformers is only needed for HF tokenizers, which the
# benchmark does not use (it passes raw byte vocabularies to every engine).
"${PIP[@]}" --no-deps xgrammar llguidance outlines-core
# xgrammar imports torch: take the CPU build (the wheel these machines serve locally)
# when the system interpreter has none to share
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" torch==2.13.0
# the workers serialise instances with this project's schema policy (tests/), so they
# import constrained: its runtime dependencies (numba, lark, pydantic, ...) go in too
"$VENV/bin/python" -c "import numba, lark, pydantic, jsonschema" 2>/dev/null \
    || "${PIP[@]}" -e "$HERE/../.."
"${PIP[@]}" "apache-tvm-ffi>=0.1.11" transformers
"$VENV/bin/python" - <<'PY'
import importlib
for name in ("xgrammar", "llguidance", "outlines_core"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}: ok {getattr(mod, '__version__', '')}")
    except Exception as exc:  # report and continue: the benchmark marks the peer missing
        print(f"{name}: import failed: {exc!r}")
PY
