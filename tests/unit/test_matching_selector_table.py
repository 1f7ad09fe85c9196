"""The selector table a node intersects: each value once, with its holders; crowded values left out."""

from __future__ import annotations

from node.matching.features import Features
from node.matching.local import selector_table
from protocol.identifiers import Selector, encode_selector
from protocol.matching import MAX_SELECTOR_HOLDERS


def _person(*phones: str) -> Features:
    selectors = tuple(Selector("phone", encode_selector("phone", p)) for p in phones)
    return Features(fields={}, birth_year=None, selectors=selectors)


def test_shared_values_list_every_holder_and_crowded_values_are_left_out() -> None:
    shelter = "+40212000000"  # one number written down for every person a shelter took in
    refs = [f"ROU-P{i:07d}" for i in range(MAX_SELECTOR_HOLDERS + 1)]
    feats = [_person(shelter, f"+4072{i:07d}") for i in range(len(refs))]
    feats[1] = _person(shelter, "+40720000000")  # shares its own number with person 0
    table = selector_table(refs, feats)
    by_value = dict(zip(table.values, table.owners, strict=True))
    assert encode_selector("phone", shelter) not in by_value
    assert by_value[encode_selector("phone", "+40720000000")] == [(refs[0], "phone"), (refs[1], "phone")]
    assert len(table.values) == len(refs) - 1 and table.values == sorted(table.values)


def test_a_value_exactly_at_the_limit_is_kept() -> None:
    refs = [f"NLD-P{i:07d}" for i in range(MAX_SELECTOR_HOLDERS)]
    table = selector_table(refs, [_person("+31201234567") for _ in refs])
    assert len(table.values) == 1 and len(table.owners[0]) == MAX_SELECTOR_HOLDERS
