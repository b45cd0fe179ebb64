"""The ``constrained`` command line: ``generate``, ``models``, ``grammars``.

Every failure the user can cause (bad schema file, unknown grammar, missing model, bad flags,
truncated output) prints ONE line ``constrained: error: ...`` on stderr and exits non-zero.
This module may import ``engine`` (to load a model); ``constrained.generate`` never does.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import enum
import importlib
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import (
    ConstrainedError,
    IncompleteOutput,
    OutputTypeError,
    PromptError,
    SchemaError,
)

EXIT_ERROR = 1
EXIT_INCOMPLETE = 3
EXIT_USAGE = 2


class CliError(Exception):
    """A user error found by the command line itself (reported as one line)."""


# ----------------------------------------------------------------------------- parsing
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``constrained`` command."""
    parser = argparse.ArgumentParser(
        prog="constrained",
        description="Structured generation: make a language model's output match a JSON Schema, "
        "pydantic model, regex or grammar.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    gen = sub.add_parser("generate", help="generate constrained output from a prompt")
    what = gen.add_mutually_exclusive_group()
    what.add_argument("--schema", metavar="FILE", help="JSON Schema file (output: JSON)")
    what.add_argument("--pydantic", metavar="MODULE:CLASS",
                      help="pydantic model, as module:Class or path/to/file.py:Class (output: JSON)")
    what.add_argument("--regex", metavar="R", help="Python-syntax regular expression (full match)")
    what.add_argument("--grammar", metavar="NAME_OR_FILE", help="shipped grammar name or a .lark file")
    what.add_argument("--gbnf", metavar="FILE", help="GBNF (llama.cpp) grammar file")
    what.add_argument("--choice", metavar="A,B,...", help="comma-separated list of allowed outputs")
    layout = gen.add_mutually_exclusive_group()
    layout.add_argument("--indent", type=int, default=None, metavar="N",
                        help="JSON outputs: demand json.dumps(indent=N) layout (all layout is forced: faster)")
    layout.add_argument("--compact", action="store_true", help="JSON outputs: no whitespace at all")
    gen.add_argument("--start", default=None, help="start rule for --grammar/--gbnf (default: start/root)")
    src = gen.add_mutually_exclusive_group()
    src.add_argument("--prompt", "-p", help="prompt text (default: read stdin)")
    src.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE")
    gen.add_argument("--system", help="system message for the chat template")
    gen.add_argument("--no-chat", action="store_true", help="do not apply the model's chat template")
    gen.add_argument("--model", "-m", metavar="PATH_OR_NAME",
                     help="GGUF file, HF model folder or registry name (default: the default model)")
    gen.add_argument("--max-tokens", type=int, default=512, help="token budget (default 512)")
    gen.add_argument("--temperature", "-t", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    gen.add_argument("--no-jump-forward", action="store_true", help="disable jump-forward decoding")
    out = gen.add_mutually_exclusive_group()
    out.add_argument("--stream", action="store_true", help="print text as it is generated")
    out.add_argument("--json", action="store_true",
                     help="print one JSON object: value, text, statistics")

    models = sub.add_parser("models", help="list named models; --pull NAME provisions one")
    models.add_argument("--pull", metavar="NAME", help="download/extract a named model into the cache")

    sub.add_parser("grammars", help="list the shipped grammars")
    return parser


# ----------------------------------------------------------------------------- output types
def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} file {path}: {exc}") from None


def _load_schema(path: str) -> Any:
    text = _read_text(path, "schema")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"schema file {path} is not valid JSON: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"schema file {path} must hold a JSON object or boolean, got {type(schema).__name__}")
    return schema


def _load_pydantic(spec: str) -> type:
    import pydantic

    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise CliError(f"--pydantic expects module:Class or path.py:Class, got {spec!r}")
    try:
        if target.endswith(".py") or os.sep in target:
            path = Path(target)
            if not path.is_file():
                raise CliError(f"pydantic module file not found: {target}")
            mod_spec = importlib.util.spec_from_file_location(f"_constrained_user_{path.stem}", path)
            if mod_spec is None or mod_spec.loader is None:
                raise CliError(f"cannot import {target}")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except CliError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: any import failure becomes one line
        raise CliError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise CliError(f"{target} has no attribute {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)):
        raise OutputTypeError(f"{spec} is not a pydantic BaseModel subclass")
    return cls


def output_type_from_args(args: argparse.Namespace) -> Any:
    """The generate() output type the flags ask for (None: free text)."""
    from .generation.output_types import Choice, Gbnf, Lark, Regex

    if args.schema is not None:
        return _load_schema(args.schema)
    if args.pydantic is not None:
        return _load_pydantic(args.pydantic)
    if args.regex is not None:
        return Regex(args.regex)
    if args.choice is not None:
        choices = [c for c in args.choice.split(",")]
        if not all(choices):
            raise CliError(f"--choice has an empty alternative: {args.choice!r}")
        return Choice(choices)
    if args.gbnf is not None:
        return Gbnf(_read_text(args.gbnf, "GBNF grammar"), start=args.start or "root")
    if args.grammar is not None:
        if Path(args.grammar).is_file() or args.grammar.endswith(".lark"):
            return Lark(_read_text(args.grammar, "grammar"), start=args.start or "start")
        from .generation.output_types import resolve_output_type

        resolve_output_type(args.grammar)  # validates the name early (one-line error)
        return args.grammar
    return None


def _prompt_from_args(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.prompt is not None:
        prompt = args.prompt
    elif args.prompt_file is not None:
        prompt = _read_text(args.prompt_file, "prompt")
    else:
        if stdin.isatty():
            raise CliError("no prompt: pass --prompt TEXT, --prompt-file FILE, or pipe text on stdin")
        prompt = stdin.read()
    if not prompt.strip():
        raise PromptError("the prompt is empty")
    return prompt


# ----------------------------------------------------------------------------- commands
def _default_loader(name: str | None) -> Any:
    """Load ``name``: a registry name (provisioned on first use), a GGUF file or HF folder."""
    import engine
    from engine import registry

    if name is None:
        return engine.load_model()
    if name in registry.names():
        return engine.load_model(registry.model_path(name))
    if not Path(name).exists():
        raise CliError(f"model not found: {name} (not a file, a folder, or one of: {', '.join(registry.names())})")
    return engine.load_model(name)


def _jsonable(value: Any) -> Any:
    """A JSON-serialisable form of a generate() value (pydantic models, dates, enums ...)."""
    try:
        import pydantic

        if isinstance(value, pydantic.BaseModel):
            return value.model_dump(mode="json")
    except ImportError:  # pragma: no cover - pydantic is a dependency
        pass
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
        return str(value) if not isinstance(value, (datetime.date, datetime.time)) else value.isoformat()
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


def _schema_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """compile_json_schema options from --indent / --compact (None: the default policy)."""
    if args.indent is not None:
        if args.indent < 0:
            raise CliError(f"--indent must be >= 0, got {args.indent}")
        return {"indent": args.indent}
    if args.compact:
        return {"whitespace": "compact"}
    return None


def cmd_generate(args: argparse.Namespace, stdout: TextIO, stdin: TextIO,
                 load_model: Callable[[str | None], Any]) -> int:
    """``constrained generate``: flags are checked before the model loads (fast errors)."""
    from .generate import generate, stream

    output_type = output_type_from_args(args)
    prompt = _prompt_from_args(args, stdin)
    if args.max_tokens < 1:
        raise CliError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    if args.model and (os.sep in args.model or args.model.endswith(".gguf")) and not Path(args.model).exists():
        raise CliError(f"model not found: {args.model}")
    model = load_model(args.model)
    kwargs: dict[str, Any] = dict(
        max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        seed=args.seed, stop=args.stop, chat=False if args.no_chat else None, system=args.system,
        jump_forward=not args.no_jump_forward, schema_options=_schema_options(args),
    )
    if args.stream:
        for piece in stream(model, prompt, output_type, **kwargs):
            stdout.write(piece)
            stdout.flush()
        stdout.write("\n")
        return 0
    result = generate(model, prompt, output_type, return_stats=True, **kwargs)
    if args.json:
        payload = {
            "value": _jsonable(result.value),
            "text": result.text,
            "stats": dataclasses.asdict(result.stats),
        }
        stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        stdout.write(result.text + "\n")
    return 0


def cmd_models(args: argparse.Namespace, stdout: TextIO) -> int:
    """``constrained models``: list named models, or provision one with --pull."""
    from engine import registry

    if args.pull:
        path = registry.model_path(args.pull)
        stdout.write(f"{args.pull}\t{path}\n")
        return 0
    for name in registry.names():
        spec = registry.MODELS[name]
        cached = (registry.cache_dir() / spec.name / spec.filename).is_file()
        default = " (default)" if name == registry.DEFAULT_MODEL else ""
        state = "cached" if cached else "not downloaded"
        stdout.write(f"{name}{default}\t{spec.size / 1e6:.0f} MB\t{state}\t{spec.description}\n")
    return 0


def cmd_grammars(stdout: TextIO) -> int:
    """``constrained grammars``: one shipped grammar name per line."""
    import grammars

    stdout.writelines(f"{name}\n" for name in grammars.names())
    return 0


def _handled_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConstrainedError, CliError, OSError]
    try:
        from engine.errors import EngineError

        errors.append(EngineError)
    except ImportError:  # pragma: no cover - engine ships with the distribution
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         stdin: TextIO | None = None, load_model: Callable[[str | None], Any] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    inp = stdin if stdin is not None else sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage + one error line
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "generate":
            return cmd_generate(args, out, inp, load_model or _default_loader)
        if args.command == "models":
            return cmd_models(args, out)
        return cmd_grammars(out)
    except IncompleteOutput as exc:
        err.write(f"constrained: error: {_one_line(str(exc))}\n")
        return EXIT_INCOMPLETE
    except _handled_errors() as exc:
        err.write(f"constrained: error: {_one_line(_describe(exc))}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("constrained: interrupted\n")
        return 130


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    text = str(exc) or type(exc).__name__
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def console_main() -> None:
    """Entry point for ``python -m constrained`` and the console script."""
    raise SystemExit(main())
