"""Command-line tests: every output-type flag with the real default model, and the error paths.

Errors must be ONE line on stderr starting with ``constrained: error:`` and a non-zero exit,
never a traceback. Most tests call ``constrained.cli.main`` in-process with the session's model
(loading it once); a few run the real ``python -m constrained`` / console script.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import lark
import pytest
from pydantic import BaseModel

from constrained import cli
from tests.generate_fakes import default_model

REPO = Path(__file__).resolve().parent.parent


class Point(BaseModel):
    """Used through ``--pydantic tests.test_cli:Point``."""

    x: int
    y: int


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli(argv: list[str], stdin: str | None = None, model: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    inp: io.StringIO = io.StringIO(stdin) if stdin is not None else _Tty()
    loader = (lambda name: default_model() if name is None else __import__("engine").load_model(name)) if model else None
    code = cli.main(argv, stdout=out, stderr=err, stdin=inp, load_model=loader)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("constrained: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, err)


# ------------------------------------------------------------------------ error paths (fast)
def test_bad_schema_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run_cli(["generate", "--schema", str(bad), "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "not valid JSON")
    code, out, err = run_cli(["generate", "--schema", str(tmp_path / "missing.json"), "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "not found")
    arr = tmp_path / "arr.json"
    arr.write_text("[1, 2]")
    code, out, err = run_cli(["generate", "--schema", str(arr), "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "object or boolean")


def test_unknown_grammar_name_is_one_line() -> None:
    code, out, err = run_cli(["generate", "--grammar", "no-such-grammar", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "unknown grammar name", "no-such-grammar")


def test_bad_pydantic_specs_are_one_line(tmp_path: Path) -> None:
    code, _, err = run_cli(["generate", "--pydantic", "nocolon", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "module:Class")
    code, _, err = run_cli(["generate", "--pydantic", "no_such_module_xyz:Thing", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "cannot import")
    code, _, err = run_cli(["generate", "--pydantic", "tests.test_cli:Missing", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "Missing")
    code, _, err = run_cli(["generate", "--pydantic", "tests.test_cli:run_cli", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "not a pydantic")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    code, _, err = run_cli(["generate", "--pydantic", f"{broken}:X", "--prompt", "hi"], model=False)
    assert_one_line_error(code, err, "boom")


def test_missing_prompt_and_files_are_one_line(tmp_path: Path) -> None:
    code, _, err = run_cli(["generate", "--regex", "a"], model=False)
    assert_one_line_error(code, err, "no prompt")
    code, _, err = run_cli(["generate", "--regex", "a", "--prompt-file", str(tmp_path / "nope.txt")], model=False)
    assert_one_line_error(code, err, "not found")
    code, _, err = run_cli(["generate", "--regex", "a"], stdin="   \n", model=False)
    assert_one_line_error(code, err, "empty")
    code, _, err = run_cli(["generate", "--gbnf", str(tmp_path / "nope.gbnf"), "--prompt", "x"], model=False)
    assert_one_line_error(code, err, "not found")
    code, _, err = run_cli(["generate", "--choice", "a,,b", "--prompt", "x"], model=False)
    assert_one_line_error(code, err, "empty alternative")


def test_usage_errors_exit_2() -> None:
    code, _, _ = run_cli(["generate", "--regex", "a", "--choice", "a,b"], model=False)
    assert code == 2
    code, _, _ = run_cli([], model=False)
    assert code == 2


def test_unknown_model_path_subprocess_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "constrained", "generate", "--regex", "[a-z]+", "--prompt", "hi",
         "--model", str(tmp_path / "no-such-model.gguf")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert_one_line_error(proc.returncode, proc.stderr, "no-such-model.gguf")
    assert proc.stdout == ""


def test_console_script_and_grammars_listing() -> None:
    import grammars

    script = shutil.which("constrained")
    cmd = [script] if script else [sys.executable, "-m", "constrained"]
    proc = subprocess.run([*cmd, "grammars"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == list(grammars.names())
    help_proc = subprocess.run([*cmd, "generate", "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert help_proc.returncode == 0 and "--schema" in help_proc.stdout and "--pydantic" in help_proc.stdout


# ------------------------------------------------------------------------ flag paths with the model
@pytest.mark.model
def test_regex_flag() -> None:
    code, out, err = run_cli(["generate", "--regex", r"\d{3}-\d{4}", "--prompt", "Give a phone number."])
    assert code == 0, err
    assert re.fullmatch(r"\d{3}-\d{4}", out.rstrip("\n"))


@pytest.mark.model
def test_choice_flag_and_prompt_from_stdin() -> None:
    code, out, err = run_cli(["generate", "--choice", "positive,negative,neutral"], stdin="I love this film! Sentiment?")
    assert code == 0, err
    assert out.rstrip("\n") in {"positive", "negative", "neutral"}


@pytest.mark.model
def test_schema_flag_json_output(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema))
    prompt = tmp_path / "p.txt"
    prompt.write_text("Paris has about 2 million inhabitants. Give the city as JSON.")
    code, out, err = run_cli(["generate", "--schema", str(path), "--prompt-file", str(prompt), "--json"])
    assert code == 0, err
    payload = json.loads(out)
    jsonschema.validate(payload["value"], schema)
    assert json.loads(payload["text"]) == payload["value"]
    assert payload["stats"]["generated_tokens"] > 0 and payload["stats"]["finish_reason"]
    code, out, err = run_cli(["generate", "--schema", str(path), "--prompt-file", str(prompt), "--indent", "2"])
    assert code == 0, err
    assert out == json.dumps(json.loads(out), indent=2) + "\n"  # exactly the json.dumps layout
    code, out, err = run_cli(["generate", "--schema", str(path), "--prompt-file", str(prompt), "--compact"])
    assert code == 0, err
    assert out == json.dumps(json.loads(out), separators=(",", ":"), ensure_ascii=False) + "\n"


@pytest.mark.model
def test_pydantic_flag_module_and_file_forms() -> None:
    code, out, err = run_cli(["generate", "--pydantic", "tests.test_cli:Point", "--prompt", "A point at x=3, y=4."])
    assert code == 0, err
    Point.model_validate_json(out)
    code, out, err = run_cli([
        "generate", "--pydantic", str(REPO / "examples" / "person.py") + ":Person",
        "--prompt", "Ana Silva, a teacher born 1985-02-01, lives in Lisbon, Portugal, speaks Portuguese.",
        "--max-tokens", "300",
    ])
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"name", "birth_date", "role", "address", "languages"}


@pytest.mark.model
def test_grammar_name_and_file_and_gbnf(tmp_path: Path) -> None:
    import grammars

    code, out, err = run_cli(["generate", "--grammar", "list", "--prompt", "List two fruits.", "--max-tokens", "60"])
    assert code == 0, err
    assert out.endswith("\n")
    lark.Lark(grammars.load("list")).parse(out[:-1])  # the CLI adds one newline after the text

    grammar = 'start: "(" NUM ("," NUM)* ")"\nNUM: /[0-9]{1,3}/\n'
    path = tmp_path / "tuple.lark"
    path.write_text(grammar)
    code, out, err = run_cli(["generate", "--grammar", str(path), "--prompt", "A tuple of numbers:"])
    assert code == 0, err
    lark.Lark(grammar).parse(out.rstrip("\n"))

    gbnf = tmp_path / "yn.gbnf"
    gbnf.write_text('root ::= ("yes" | "no") " because " [a-z ]{1,20} "."\n')
    code, out, err = run_cli(["generate", "--gbnf", str(gbnf), "--prompt", "Is the sky blue?"])
    assert code == 0, err
    assert re.fullmatch(r"(yes|no) because [a-z ]{1,20}\.", out.rstrip("\n"))


@pytest.mark.model
def test_stream_equals_plain_and_sampling_flags_reproduce() -> None:
    base = ["generate", "--regex", r"[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", "--prompt", "Name a city."]
    code, plain, err = run_cli(base)
    assert code == 0, err
    code, streamed, err = run_cli([*base, "--stream"])
    assert code == 0, err
    assert streamed == plain
    sampled = [*base, "--temperature", "0.9", "--top-p", "0.95", "--top-k", "50", "--seed", "7"]
    code1, out1, _ = run_cli(sampled)
    code2, out2, _ = run_cli(sampled)
    assert code1 == code2 == 0 and out1 == out2
    assert re.fullmatch(r"[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", out1.rstrip("\n"))


@pytest.mark.model
def test_system_and_no_chat_flags() -> None:
    code, out, err = run_cli(["generate", "--choice", "red,green,blue", "--system", "Answer with a colour.",
                              "--prompt", "What colour is grass?"])
    assert code == 0, err and out.rstrip("\n") in {"red", "green", "blue"}
    code, out, err = run_cli(["generate", "--regex", r"[0-9]{1,3}", "--no-chat", "--prompt", "2 + 2 ="])
    assert code == 0, err
    assert re.fullmatch(r"[0-9]{1,3}", out.rstrip("\n"))


@pytest.mark.model
def test_truncation_is_an_error_with_exit_3() -> None:
    code, out, err = run_cli(["generate", "--regex", r"[a-z]{30}", "--prompt", "Letters:", "--max-tokens", "2"])
    assert code == 3
    assert_one_line_error(code, err, "max_tokens")
    assert out == ""


@pytest.mark.model
def test_python_dash_m_generate_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "constrained", "generate", "--choice", "yes,no", "--prompt", "Is water wet?"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in {"yes", "no"}






def test_models_lists_the_default_model() -> None:
    from engine import registry

    code, out, err = run_cli(["models"], model=False)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(registry.names())
    default = [line for line in lines if "(default)" in line]
    assert len(default) == 1 and default[0].startswith(registry.DEFAULT_MODEL)


def test_models_pull_unknown_name_is_one_line() -> None:
    code, out, err = run_cli(["models", "--pull", "no-such-model"], model=False)
    assert_one_line_error(code, err, "no-such-model")
