"""``schema.graphql`` is exactly what the code exports, so clients can diff the contract."""

from pathlib import Path

from graph.schema import export_sdl


def test_schema_file_matches_the_code():
    committed = (Path(__file__).parent.parent / "schema.graphql").read_text()
    assert committed == export_sdl(), "schema.graphql is stale: run `support-graph export-schema > schema.graphql`"
