"""A mapping key that is not a valid name is reported at the key and names it, not the value under it."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

NAME_RULE = "expected a name of letters, digits and underscores"


@pytest.mark.parametrize(("text", "expected"), [
    ('name: t\ninputs: {"bad name!": [3, 8, 8]}\nbody: [relu]\n',
     f"k.yaml:2:10: E103: 'inputs': key 'bad name!': {NAME_RULE}"),
    ("name: t\ninputs:\n  x: [3]\n  a.b: {shape: [3]}\nbody: [relu]\n",
     f"k.yaml:4:3: E103: 'inputs': key 'a.b': {NAME_RULE}"),
    ('name: t\ninputs: {x: [3]}\nparams: {"x y": 1}\nbody: [relu]\n',
     f"k.yaml:3:10: E103: 'params': key 'x y': {NAME_RULE}"),
    ('name: t\ninputs: {x: [3]}\nblocks: {"b-1": {body: [relu]}}\nbody: [relu]\n',
     f"k.yaml:3:10: E103: 'blocks': key 'b-1': {NAME_RULE}"),
    ("name: t\ninputs: {%s: [3]}\nbody: [relu]\n" % ("a" * 70),
     "k.yaml:2:10: E103: 'inputs': key '" + "a" * 55 + "...': expected at most 64 characters"),
])
def test_a_bad_key_is_named_and_located_at_the_key(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        compile_text(text, "k.yaml")
    assert [d.format() for d in err.value.diagnostics] == [expected]
