"""The README's two set-up commands, run on a fresh clone in a clean virtual environment.

The first command (create a venv, ``pip install -e .``, run the main job: JSON from a pydantic
model with the default model) runs verbatim and its output must validate as ``Person``. The
second (the test command) runs verbatim with one fast test file appended as pytest's argument:
running the whole suite inside a test would recurse (.ci/run runs it verbatim). pip's cache and the model cache are reused, so this needs no new downloads when warm.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def setup_commands(readme: str) -> list[str]:
    """The ```bash blocks of the README's "Set up" section, in order."""
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = setup_commands((REPO / "README.md").read_text())
    assert len(commands) == 2, commands
    assert "constrained generate --pydantic examples/person.py:Person" in commands[0]
    assert "pytest" in commands[1]
    assert all("\n" not in c for c in commands)


@pytest.mark.slow
def test_readme_setup_commands_on_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed to make a fresh clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(clone)], check=True, timeout=120)
    main_job, test_cmd = setup_commands((clone / "README.md").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    python_dir = str(Path(sys.executable).parent)  # the README says python3: use this interpreter's
    env["PATH"] = python_dir + os.pathsep + env["PATH"]

    proc = subprocess.run(["bash", "-c", main_job], cwd=clone, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from examples.person import Person

    # pip's own output comes first on stdout; the generated JSON starts at the first line "{"
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    person = Person.model_validate_json("\n".join(lines[start:]))
    assert person.name

    assert test_cmd.endswith("python -m pytest -q"), test_cmd
    proc = subprocess.run(["bash", "-c", test_cmd + " tests/test_generate_loop.py"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\d+ passed", proc.stdout), proc.stdout[-2000:]
