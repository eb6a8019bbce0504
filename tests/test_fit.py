"""funreason.fit: each way a call can fail to fit its tool is named by its own kind."""

from __future__ import annotations

import pytest

from funreason.fit import (
    MISSING_REQUIRED, NO_CALLS, NOT_IN_ENUM, UNKNOWN_FUNCTION, UNKNOWN_PARAMETER, WRONG_TYPE, check_calls, same_calls,
)
from funreason.schema import Call, Tool

AREA = Tool("geometry.area", "Area of a shape.", {
    "type": "object",
    "properties": {"shape": {"type": "string", "enum": ["circle", "square"]}, "size": {"type": "number"},
                   "unit": {"type": "string"}, "exact": {"type": "boolean"}, "sides": {"type": "integer"}},
    "required": ["shape", "size"],
})
OPEN = Tool("log", "Write anything.", {"type": "object", "properties": {}})


@pytest.mark.parametrize("call, kind, says", [
    (Call("geometry.volume", {"shape": "circle", "size": 2}), UNKNOWN_FUNCTION, "geometry.volume is not among"),
    (Call("geometry.area", {"shape": "circle"}), MISSING_REQUIRED, "'size' is missing"),
    (Call("geometry.area", {"shape": "circle", "size": 2, "colour": "red"}), UNKNOWN_PARAMETER, "'colour' does not exist"),
    (Call("geometry.area", {"shape": "circle", "size": "2"}), WRONG_TYPE, "'2' is a str, the schema says number"),
    (Call("geometry.area", {"shape": "circle", "size": 2, "exact": 1}), WRONG_TYPE, "1 is a int, the schema says boolean"),
    (Call("geometry.area", {"shape": "circle", "size": 2, "sides": True}), WRONG_TYPE, "True is a bool, the schema says integer"),
    (Call("geometry.area", {"shape": "triangle", "size": 2}), NOT_IN_ENUM, "'triangle' is not one of"),
])
def test_each_misfit_has_its_kind_and_a_sentence_naming_the_value(call, kind, says):
    verdict = check_calls([call], [AREA, OPEN])
    assert verdict is not None and verdict.kind == kind and says in verdict.why, verdict


def test_fitting_calls_pass_and_an_empty_answer_does_not():
    assert check_calls([Call("geometry.area", {"shape": "square", "size": 2.5, "unit": "m", "exact": False, "sides": 4})],
                       [AREA]) is None
    assert check_calls([Call("log", {"anything": [1, 2]})], [OPEN]) is None  # no properties declared: any argument
    assert check_calls([Call("geometry.area", {"shape": "circle", "size": 1, "unit": None})], [AREA]) is None
    assert check_calls([], [AREA]).kind == NO_CALLS


def test_same_calls_ignores_order_but_not_values_or_types():
    a, b = Call("f", {"x": 1}), Call("g", {"y": [1, 2]})
    assert same_calls([a, b], [b, a])
    assert not same_calls([a, b], [a, a])
    assert not same_calls([Call("f", {"x": "1"})], [a])
    assert not same_calls(None, [a]) and not same_calls([a], None)
