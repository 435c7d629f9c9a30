"""The repository's own tests use the harness plugin (installed as a pytest11
entry point); nothing else lives here."""
