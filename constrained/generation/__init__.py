"""Generation internals: output types, masked sampling, incremental decoding, jump-forward
and the batched decoding loop behind :func:`constrained.generate` / :func:`constrained.stream`.
"""
