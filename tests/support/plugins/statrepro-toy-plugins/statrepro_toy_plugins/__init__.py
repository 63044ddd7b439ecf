"""statrepro plugins for the tests: an engine kind, a reading-only harness and a benchmark (see pyproject.toml)."""
