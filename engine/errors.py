"""Every exception the `engine` package raises on purpose (all derive from EngineError)."""
from __future__ import annotations


class EngineError(Exception):
    """Base class of all errors raised by `engine`."""


class ModelFormatError(EngineError, ValueError):
    """A model file is corrupt, truncated, or not in a format we read."""


class UnsupportedArchitecture(EngineError, ValueError):
    """The model's architecture is not one the transformer implements."""


class UnsupportedQuantType(EngineError, ValueError):
    """A tensor uses a quantisation type we cannot dequantise."""


class TokenizerError(EngineError, ValueError):
    """A tokenizer could not be built, or an id is out of range."""


class ContextOverflow(EngineError, ValueError):
    """The prompt (plus requested tokens) exceeds the model's context length."""


class ProvisioningError(EngineError, RuntimeError):
    """A named model could not be provisioned (download, checksum, extraction)."""


class BackendUnavailable(EngineError, RuntimeError):
    """The requested backend/device (torch, cupy, cuda) is not available here."""


class ChatTemplateError(TokenizerError):
    """A chat template is missing, does not compile, or failed while rendering."""


class TokenIdError(TokenizerError, IndexError):
    """A token id is outside the vocabulary / embedding table."""
