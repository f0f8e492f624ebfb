"""Output ids are UUIDv5 of the kind, the cause and the key, whatever the characters."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from recalculator.publishing import _NAMESPACE, output_id


@given(st.text(min_size=1), st.text(), st.text())
def test_output_id_is_the_uuid5_of_kind_cause_and_key(kind, cause, key):
    expected = uuid.uuid5(_NAMESPACE, f"{kind}\x1f{cause}\x1f{key}")
    assert output_id(kind, cause, key) == str(expected)
    assert uuid.UUID(output_id(kind, cause, key)).version == 5
