"""Extract a structured Person record from free text with the default model.

Run: ``python examples/person.py`` (first run provisions the default model, ~100 MB), or from the
command line: ``constrained generate --pydantic examples/person.py:Person --prompt "..."``.
The result is a validated ``Person`` instance: the constraint guarantees the JSON parses and
validates (nested object, list, enum, optional field, ISO date).
"""
from __future__ import annotations

import datetime
import enum
import sys

from pydantic import BaseModel, ConfigDict, Field


class Role(str, enum.Enum):
    """What the person does."""

    engineer = "engineer"
    doctor = "doctor"
    teacher = "teacher"
    artist = "artist"
    other = "other"


class Address(BaseModel):
    """Where the person lives."""

    model_config = ConfigDict(extra="forbid")
    city: str = Field(max_length=40)
    country: str = Field(max_length=40)


class Person(BaseModel):
    """A person mentioned in the text."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=60)
    birth_date: datetime.date
    role: Role
    address: Address
    languages: list[str] = Field(max_length=5)
    email: str | None = None


DEFAULT_TEXT = (
    "Maria Lopez was born on 14 March 1990 in Madrid, Spain, where she still lives. "
    "She works as a doctor and speaks Spanish, English and French."
)


def main(text: str = DEFAULT_TEXT) -> Person:
    """Load the default model, extract a Person from ``text``, print it as JSON."""
    import constrained
    from engine import load_model

    model = load_model()
    person = constrained.generate(
        model,
        f"Extract the person described in this text as JSON.\n\nText: {text}",
        Person,
        max_tokens=200,
    )
    print(person.model_dump_json(indent=2))
    return person


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or DEFAULT_TEXT)
