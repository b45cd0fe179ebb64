"""Adapters that run our constraints inside other frameworks.

* :mod:`.transformers` — a logits processor for ``model.generate``;
* :mod:`.llama_cpp` — a ``logits_processor`` for llama-cpp-python;
* :mod:`.serving` — the backend/grammar object pair serving engines (vLLM-style) drive.

Each module imports its framework lazily, so importing this package costs nothing.
"""
