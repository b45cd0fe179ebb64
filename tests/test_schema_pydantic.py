"""pydantic models -> constraints: their own JSON dumps are accepted, outputs sampled
under random logits validate with ``model_validate_json``, ``parse_output`` returns
validated instances (pydantic is the reference)."""
from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Annotated, Literal, Optional
from uuid import UUID

import pytest
from pydantic import BaseModel, Field

from constrained.errors import IncompleteOutput
from constrained.schema import compile_json_schema, json_schema_of, parse_output
from constrained.vocab import Vocabulary
from tests.test_schema_helpers import acceptor
from tests.test_schema_tokens import sample
from tests.testdata import vocab_path


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: Annotated[int, Field(ge=0, le=9)]


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Person(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=20)]
    age: Annotated[int, Field(ge=0, lt=150)]
    score: Annotated[float, Field(gt=0, le=1)]
    coords: tuple[int, int]
    color: Color
    born: dt.date
    at: dt.datetime
    wake: dt.time
    id: UUID
    home: Address
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    even: Annotated[int, Field(multiple_of=2, ge=0, le=100)]
    tags: list[str] = []
    meta: dict[str, int] = {}
    nick: str | None = None


class Tree(BaseModel):
    value: int
    children: list[Tree] = []


UTC = dt.UTC
PEOPLE = [
    Person(name="Ada", age=36, score=0.5, coords=(1, -2), color=Color.RED, born=dt.date(1815, 12, 10),
           at=dt.datetime(2024, 2, 29, 12, 0, tzinfo=UTC), wake=dt.time(7, 30, tzinfo=UTC),
           id=UUID("12345678-1234-5678-1234-567812345678"), home=Address(street="1 Main St", zip="12345"),
           pet=Cat(kind="cat", lives=9), even=42, tags=["a", "b"], meta={"x": 1}, nick="Countess"),
    Person(name="B\u00e9a \"Q\"", age=0, score=1.0, coords=(0, 0), color=Color.GREEN, born=dt.date(2000, 2, 29),
           at=dt.datetime(1999, 12, 31, 23, 59, 59, 123000, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
           wake=dt.time(0, 0, tzinfo=UTC), id=UUID(int=0), home=Address(street="", zip="00000"),
           pet=Dog(kind="dog", good=True), even=0),
]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_gguf(vocab_path("llama-bpe"))


def test_model_dumps_are_accepted() -> None:
    accepts = acceptor(Person, additional_properties=False)
    for p in PEOPLE:
        text = p.model_dump_json()
        assert accepts(text.encode()), text
        assert accepts(json.dumps(json.loads(text), ensure_ascii=False).encode())


def test_model_language_rejects_what_pydantic_rejects() -> None:
    accepts = acceptor(Person, additional_properties=False)
    good = json.loads(PEOPLE[0].model_dump_json())
    for key, bad in [("age", 150), ("score", 0), ("even", 3), ("color", "blue"), ("coords", [1]),
                     ("born", "2023-02-29"), ("home", {"street": "x", "zip": "1234"}),
                     ("pet", {"kind": "cat", "good": True}), ("name", "")]:
        text = json.dumps({**good, key: bad}, ensure_ascii=False)
        assert not accepts(text.encode()), text
        with pytest.raises(ValueError):
            Person.model_validate_json(text)
    assert not accepts(json.dumps({**good, "extra": 1}).encode())  # pydantic default: forbid extras


def test_recursive_model_round_trip() -> None:
    accepts = acceptor(Tree)
    t = Tree(value=1, children=[Tree(value=2, children=[Tree(value=3)]), Tree(value=-4)])
    assert accepts(t.model_dump_json().encode())
    assert not accepts(b'{"value": 1, "children": [{"value": "x"}]}')


@pytest.mark.parametrize("model", [Person, Tree, Address])
def test_sampled_outputs_validate_with_pydantic(model: type[BaseModel], vocab: Vocabulary) -> None:
    c = compile_json_schema(model, vocab)
    by_bytes = {t: i for i, t in enumerate(vocab.tokens) if t and i not in set(vocab.special_token_ids)}
    for seed in range(4):
        out = sample(c, vocab, by_bytes, seed, max_tokens=30)
        instance = parse_output(out, model)
        assert isinstance(instance, model)
        model.model_validate_json(out)


def test_parse_output_and_python_types() -> None:
    assert parse_output(PEOPLE[0].model_dump_json(), Person) == PEOPLE[0]
    with pytest.raises(IncompleteOutput):
        parse_output('{"name": "x"', Person)
    assert parse_output(b"[1, 2]", list[int]) == [1, 2]
    schema = json_schema_of(Optional[list[Literal["a", "b"]]])
    accepts = acceptor(schema)
    assert accepts(b'["a", "b"]') and accepts(b"null") and not accepts(b'["c"]')
