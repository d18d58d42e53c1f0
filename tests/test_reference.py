"""docs/reference.md: its spec-key table is the schema's, and it names every key a run has."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.spec import load_spec
from common.spec_reference import BEGIN, END, spec_fields, spec_key_table, with_table

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "reference.md"


SCHEMA_KEYS = {key for key, _ in spec_fields()}


def leaf_keys(data: dict, prefix: str = "") -> list[str]:
    """Every key of a resolved spec; a key whose value is a mapping of its own (a share per
    task) counts as one."""
    keys = []
    for name, value in data.items():
        if isinstance(value, dict) and prefix + name not in SCHEMA_KEYS:
            keys += leaf_keys(value, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_the_spec_key_table_is_generated_from_the_schema() -> None:
    document = REFERENCE.read_text()
    assert BEGIN in document and END in document
    assert with_table(document) == document, (
        "docs/reference.md's spec keys differ from common/spec.py: run "
        "python -m common.spec_reference docs/reference.md")


@pytest.mark.parametrize("spec", sorted(p.name for p in (REPO / "specs").glob("*.yaml")))
def test_every_key_of_a_resolved_spec_is_documented(spec: str) -> None:
    resolved = load_spec(REPO / "specs" / spec).model_dump(mode="json")
    table = spec_key_table()
    missing = [key for key in leaf_keys(resolved) if f"| `{key}` |" not in table]
    assert not missing, missing
    document = REFERENCE.read_text()
    assert all(f"| `{key}` |" in document for key in leaf_keys(resolved))


def test_every_key_has_a_description() -> None:
    undocumented = [row for row in spec_key_table().splitlines()[2:] if row.endswith("|  |")]
    assert not undocumented, undocumented
