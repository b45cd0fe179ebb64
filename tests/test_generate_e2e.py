"""End-to-end generation with the real default model (SmolLM2-135M-Instruct).

Every output is checked by an independent reference: pydantic's own validation of the raw text,
``re.fullmatch``, membership for choices, and Lark's own parser for grammars. Also: seeded
sampling reproduces, different seeds differ, a batch equals one-at-a-time, streaming equals
generate, jump-forward saves forward passes, and truncation raises IncompleteOutput.
"""
from __future__ import annotations

import datetime
import enum
import json
import re
from typing import Any, Literal

import lark
import pytest
from pydantic import BaseModel, ConfigDict, Field

import constrained
import grammars
from examples.person import Person
from tests.generate_fakes import default_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model() -> Any:
    return default_model()


# ----------------------------------------------------------------------------- pydantic models
class Color(str, enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Size(enum.Enum):
    small = "S"
    medium = "M"
    large = "L"


class Strict(BaseModel):
    """Closed objects (additionalProperties: false), as extraction schemas usually are."""

    model_config = ConfigDict(extra="forbid")


class Item(Strict):
    name: str = Field(max_length=24)
    quantity: int = Field(ge=1, le=99)


class Order(Strict):
    customer: str = Field(max_length=30)
    items: list[Item] = Field(min_length=1, max_length=3)
    express: bool


class Event(Strict):
    title: str = Field(max_length=40)
    day: datetime.date
    attendees: int | None = None


class Shirt(Strict):
    color: Color
    size: Size
    price: float = Field(ge=0, le=1000)


class Book(Strict):
    title: str = Field(max_length=40)
    author: str = Field(max_length=30)
    year: int = Field(ge=1000, le=2100)
    isbn: str | None = Field(default=None, max_length=20)
    genres: list[Literal["fiction", "history", "science", "poetry"]] = Field(max_length=2)


class City(Strict):
    name: str = Field(max_length=30)
    country: str = Field(max_length=30)


class Trip(Strict):
    origin: City
    destination: City
    nights: int = Field(ge=0, le=60)


PYDANTIC_CASES: list[tuple[str, type[BaseModel]]] = [
    ("Extract the person: Maria Lopez, born 1990-03-14, a doctor living in Madrid, Spain, speaks Spanish and English.", Person),
    ("Alice ordered 2 apples and 3 pears, express delivery. Extract the order.", Order),
    ("The team meeting is on 2024-05-06 with 12 people. Extract the event.", Event),
    ("A large blue shirt costs 19.99 dollars. Extract the shirt.", Shirt),
    ("'Dune' by Frank Herbert, published 1965, a fiction novel. Extract the book.", Book),
    ("We fly from Paris, France to Tokyo, Japan for 5 nights. Extract the trip.", Trip),
]


@pytest.mark.parametrize("prompt,cls", PYDANTIC_CASES, ids=[c.__name__ for _, c in PYDANTIC_CASES])
def test_pydantic_greedy_outputs_validate(model: Any, prompt: str, cls: type[BaseModel]) -> None:
    res = constrained.generate(model, prompt, cls, max_tokens=220, return_stats=True)
    assert isinstance(res.value, cls)
    assert cls.model_validate_json(res.text) == res.value  # pydantic's own check of the raw text
    assert res.stats.passes_saved > 0  # the braces / keys are forced: jump-forward fed them


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pydantic_sampled_outputs_validate_and_reproduce(model: Any, seed: int) -> None:
    prompt, cls = PYDANTIC_CASES[3]
    kwargs = dict(max_tokens=120, temperature=0.8, top_p=0.95, seed=seed)
    first = constrained.generate(model, prompt, cls, return_stats=True, **kwargs)
    again = constrained.generate(model, prompt, cls, return_stats=True, **kwargs)
    assert cls.model_validate_json(first.text) == first.value
    assert first.text == again.text


def test_json_schema_dict_returns_json_value(model: Any) -> None:
    import jsonschema

    schema = {
        "type": "object",
        "properties": {
            "answer": {"enum": ["yes", "no"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["answer", "confidence"],
        "additionalProperties": False,
    }
    value = constrained.generate(model, "Is Paris in France? Answer with confidence.", schema, max_tokens=60)
    jsonschema.validate(value, schema)


@pytest.mark.parametrize("tp,check", [
    (int, lambda v: isinstance(v, int)),
    (bool, lambda v: isinstance(v, bool)),
    (Literal["cat", "dog"], lambda v: v in ("cat", "dog")),
    (Color, lambda v: isinstance(v, Color)),
    (list[int], lambda v: isinstance(v, list) and all(isinstance(x, int) for x in v)),
    (datetime.date, lambda v: isinstance(v, datetime.date)),
])
def test_python_types(model: Any, tp: Any, check: Any) -> None:
    value = constrained.generate(model, "Answer briefly: how many legs does a cat have, and when is new year?", tp, max_tokens=40)
    assert check(value), value


# ----------------------------------------------------------------------------- regexes and choices
REGEX_CASES = [
    ("Give a US phone number.", r"\d{3}-\d{3}-\d{4}"),
    ("What is today's date? Use ISO format.", r"\d{4}-\d{2}-\d{2}"),
    ("Give an email address for John.", r"[a-z]{1,10}@[a-z]{1,10}\.(com|org|net)"),
    ("Pick a colour as a hex code.", r"#[0-9a-f]{6}"),
    ("What time is lunch? Use HH:MM.", r"([01]\d|2[0-3]):[0-5]\d"),
    ("Name a city and its country.", r"[A-Z][a-z]{1,15}, [A-Z][a-z]{1,15}"),
    ("Give an IPv4 address.", r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"),
]


@pytest.mark.parametrize("prompt,pattern", REGEX_CASES, ids=[p for _, p in REGEX_CASES])
def test_regex_greedy_outputs_fullmatch(model: Any, prompt: str, pattern: str) -> None:
    out = constrained.generate(model, prompt, constrained.Regex(pattern), max_tokens=40)
    assert re.fullmatch(pattern, out), out


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_regex_sampled_with_seeds(model: Any, seed: int) -> None:
    prompt, pattern = REGEX_CASES[5]
    out = constrained.generate(model, prompt, constrained.Regex(pattern), max_tokens=40, temperature=1.0, seed=seed)
    assert re.fullmatch(pattern, out), out
    assert out == constrained.generate(model, prompt, constrained.Regex(pattern), max_tokens=40, temperature=1.0, seed=seed)


def test_different_seeds_give_different_samples(model: Any) -> None:
    pattern = r"[a-z]{4,8}"
    outs = {constrained.generate(model, "Invent a word.", constrained.Regex(pattern), temperature=1.2, seed=s)
            for s in range(6)}
    assert len(outs) >= 3
    assert all(re.fullmatch(pattern, o) for o in outs)


CHOICE_CASES = [
    ("I absolutely loved this movie! Sentiment?", ["positive", "negative", "neutral"]),
    ("Is the sun hot?", ["yes", "no"]),
    ("What colour is the sky on a clear day?", ["red", "green", "blue", "yellow"]),
    ("Which language is 'Bonjour' from?", ["French", "German", "Spanish", "Italian"]),
]


@pytest.mark.parametrize("prompt,choices", CHOICE_CASES, ids=[c[0] for _, c in CHOICE_CASES])
def test_choice_outputs(model: Any, prompt: str, choices: list[str]) -> None:
    assert constrained.generate(model, prompt, choices) in choices
    for seed in (0, 1):
        assert constrained.generate(model, prompt, constrained.Choice(choices), temperature=1.0, seed=seed) in choices


# ----------------------------------------------------------------------------- shipped grammars
GRAMMAR_CASES = [
    ("arithmetic", "Write the expression 2 + 3 * 4."),
    ("list", "List two fruits."),
    ("sql", "Write an SQL query selecting all rows from table users."),
    ("json", "Reply with the JSON value true."),
]


@pytest.mark.parametrize("name,prompt", GRAMMAR_CASES, ids=[n for n, _ in GRAMMAR_CASES])
def test_shipped_grammar_outputs_parse_with_lark(model: Any, name: str, prompt: str) -> None:
    out = constrained.generate(model, prompt, name, max_tokens=90)
    lark.Lark(grammars.load(name)).parse(out)


def test_lark_grammar_text_sampled(model: Any) -> None:
    grammar = 'start: "(" NUM ("," NUM)* ")"\nNUM: /[0-9]{1,3}/\n'
    for seed in (0, 1):
        out = constrained.generate(model, "A tuple:", constrained.Lark(grammar), temperature=0.9, seed=seed, max_tokens=40)
        lark.Lark(grammar).parse(out)


# ----------------------------------------------------------------------------- batching, streaming, budget
def test_batch_equals_one_at_a_time(model: Any) -> None:
    prompts = [p for p, _ in REGEX_CASES[:3]] + ["Name a city and its country."]
    pattern = REGEX_CASES[5][1]
    regex = constrained.Regex(pattern)
    for kwargs in ({}, {"temperature": 0.9, "seed": 5}):
        batch = constrained.generate(model, prompts, regex, max_tokens=30, **kwargs)
        single = [constrained.generate(model, p, regex, max_tokens=30, **kwargs) for p in prompts]
        assert batch == single
        assert all(re.fullmatch(pattern, b) for b in batch)


def test_batch_of_pydantic_equals_one_at_a_time(model: Any) -> None:
    prompts = [p for p, c in PYDANTIC_CASES if c is Shirt] + [
        "A small red shirt for 5 dollars. Extract the shirt.",
        "Green shirt, medium, 12.50. Extract the shirt.",
    ]
    batch = constrained.generate(model, prompts, Shirt, max_tokens=80, return_stats=True)
    single = [constrained.generate(model, p, Shirt, max_tokens=80, return_stats=True) for p in prompts]
    assert [b.text for b in batch] == [s.text for s in single]
    assert [b.stats.passes_saved for b in batch] == [s.stats.passes_saved for s in single]


def test_stream_equals_generate(model: Any) -> None:
    prompt, cls = PYDANTIC_CASES[3]
    pieces = list(constrained.stream(model, prompt, cls, max_tokens=120))
    res = constrained.generate(model, prompt, cls, max_tokens=120, return_stats=True)
    assert "".join(pieces) == res.text
    assert len(pieces) > 1


def test_jump_forward_saves_passes_and_stays_valid(model: Any) -> None:
    pattern = r'\{"name": "[A-Za-z ]{1,20}", "age": [0-9]{1,3}\}'
    a = constrained.generate(model, "Extract: Bob is 42.", constrained.Regex(pattern), return_stats=True)
    b = constrained.generate(model, "Extract: Bob is 42.", constrained.Regex(pattern), jump_forward=False, return_stats=True)
    assert re.fullmatch(pattern, a.text) and re.fullmatch(pattern, b.text)
    assert a.stats.passes_saved > 0 and b.stats.passes_saved == 0
    assert a.stats.forward_passes < b.stats.forward_passes


def test_fixed_json_layout_lets_jump_forward_halve_the_forward_passes(model: Any) -> None:
    prompt, cls = PYDANTIC_CASES[5]
    flexible = constrained.generate(model, prompt, cls, max_tokens=120, return_stats=True)
    indented = constrained.generate(model, prompt, cls, max_tokens=120, return_stats=True,
                                    schema_options={"indent": 2})
    assert cls.model_validate_json(indented.text) == indented.value
    assert indented.text == json.dumps(json.loads(indented.text), indent=2)
    assert indented.stats.passes_saved > flexible.stats.passes_saved
    assert indented.stats.forward_passes * 1.5 < indented.stats.generated_tokens


def test_truncation_raises_incomplete_output(model: Any) -> None:
    with pytest.raises(constrained.IncompleteOutput) as info:
        constrained.generate(model, "Extract the trip.", Trip, max_tokens=6)
    assert info.value.partial.startswith("{")
    with pytest.raises(constrained.IncompleteOutput):
        list(constrained.stream(model, "Letters:", constrained.Regex(r"[a-z]{40}"), max_tokens=3))


def test_chat_messages_and_raw_prompts(model: Any) -> None:
    msgs = [{"role": "system", "content": "Answer yes or no."}, {"role": "user", "content": "Is ice cold?"}]
    assert constrained.generate(model, msgs, ["yes", "no"]) in {"yes", "no"}
    out = constrained.generate(model, "The year after 1999 is", constrained.Regex(r" ?\d{4}"), chat=False)
    assert re.fullmatch(r" ?\d{4}", out)
