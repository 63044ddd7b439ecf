"""Diagnostics that explain WHY two environments score differently.

- ``layers``: where inside the network two numeric settings start to diverge, in one process or across
  machines through dump files (``dumps``).
- ``probe``: batch-size, padding-side and packing invariance of one model.
- ``logprobs``: token-level comparison of two serving endpoints (or in-process models).
- ``template``: chat-template token ids of two tokenizers.
- ``doctor``: the configuration factors that differ between two runs, ranked by how much they move scores.

Each module exposes pure functions returning frozen result objects with ``.summary()`` and ``.to_dict()``;
the CLI commands in statrepro/cli/ only parse arguments and print.
"""
