"""`engine` never imports `constrained` (DESIGN §2 dependency direction)."""
from __future__ import annotations

import subprocess
import sys


def test_engine_does_not_import_constrained() -> None:
    code = (
        "import sys, engine, engine.model, engine.tokenizer, engine.sampling, engine.generation, "
        "engine.registry, engine.formats.gguf_file, engine.formats.hf, engine.backends\n"
        "bad = sorted(m for m in sys.modules if m == 'constrained' or m.startswith('constrained.'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
