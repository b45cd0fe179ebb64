"""Every exception the `constrained` package raises on purpose.

All derive from :class:`ConstrainedError`, so callers can catch one class.
"""
from __future__ import annotations


class ConstrainedError(Exception):
    """Base class of all errors raised by `constrained`."""


# --- bad input when compiling -------------------------------------------------------
class CompileError(ConstrainedError, ValueError):
    """A constraint source (regex, schema, grammar) could not be compiled."""


class RegexSyntaxError(CompileError):
    """The regular expression is malformed (message says where)."""


class RegexUnsupported(CompileError):
    """The regex uses a construct that cannot be enforced exactly (backrefs, lookaround ...)."""


class SchemaError(CompileError):
    """The JSON Schema is malformed (not a dict/bool, bad keyword value, dangling $ref)."""


class SchemaUnsupported(CompileError):
    """The JSON Schema uses a keyword or feature the engine cannot enforce exactly."""


class SchemaUnsatisfiable(SchemaError):
    """The JSON Schema (under the generation policy) accepts no value at all
    (``false``, contradictory ``allOf``, ``minimum > maximum`` ...)."""


class GrammarSyntaxError(CompileError):
    """The grammar text is malformed or refers to undefined rules/terminals."""


class GrammarUnsupported(CompileError):
    """The grammar uses a construct that cannot be enforced exactly."""


class ConstraintTooComplex(CompileError):
    """Compilation or matching exceeded a resource limit (states, items, seconds)."""


# --- vocabularies ---------------------------------------------------------------------
class VocabularyError(ConstrainedError, ValueError):
    """A vocabulary could not be built (unknown file, missing metadata, bad ids)."""


# --- matching ---------------------------------------------------------------------------
class TokenRejected(ConstrainedError, ValueError):
    """A token was advanced that the constraint does not allow; the state is unchanged."""


class MatcherTerminated(TokenRejected):
    """A token was advanced after the matcher already accepted EOS."""


class InvalidTokenId(ConstrainedError, IndexError):
    """A token id is outside ``[0, logit_width)``."""


class BitmaskShapeError(ConstrainedError, ValueError):
    """A bitmask buffer has the wrong dtype or shape for this vocabulary."""


class RollbackError(ConstrainedError, ValueError):
    """``rollback(n)`` asked to undo more tokens than were advanced (or than ``max_rollback`` keeps)."""


# --- generation ----------------------------------------------------------------------------
class IncompleteOutput(ConstrainedError):
    """Generation stopped (token budget) before the constraint was satisfied.

    ``partial`` holds the text produced so far.
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class OutputTypeError(ConstrainedError, TypeError):
    """``generate``'s ``output_type`` is not a type the engine can constrain to (or an unknown grammar name)."""


class PromptError(ConstrainedError, ValueError):
    """A prompt is malformed (wrong type, bad chat messages, chat template requested but absent)."""


class SamplingError(ConstrainedError, ValueError):
    """Bad sampling parameters, or no token is left to sample after masking."""


class OutputValidationError(ConstrainedError, ValueError):
    """The finished text does not parse as the requested output type (e.g. a stop string cut it)."""
