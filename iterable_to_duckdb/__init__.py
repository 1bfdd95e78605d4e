"""The main job, the console script `iterable-to-duckdb`: every Iterable stream through PyAirbyte into DuckDB.

Without an Iterable account it syncs the bundled emulator (`iterable_emulator`). PyAirbyte comes
with the `demo` extra (`pip install -e '.[demo]'`); see `iterable_to_duckdb.sync`.
"""
