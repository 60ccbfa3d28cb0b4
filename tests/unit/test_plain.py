"""llmstep.plain: a value tree as plain JSON data, every tagged node as the data it holds, for the
CLI and the Argo UI's preview; the trees are what llmstep.values writes."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid

from llmstep.plain import plain
from llmstep.values import TAG, encode


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    tags: tuple


def test_containers_become_lists_and_objects():
    assert plain(encode((1, (2, 3)))) == [1, [2, 3]]
    assert sorted(plain(encode({3, 1, 2}))) == [1, 2, 3] and plain(encode(frozenset())) == []
    assert plain(encode({"a": [1, (2,)], "b": {"c": None}})) == {"a": [1, [2]], "b": {"c": None}}
    # a dict with keys JSON cannot hold: its keys as text, JSON for those that are not strings
    assert plain(encode({1: "one", (1, 2): "pair", "s": "text"})) == {"1": "one", "[1, 2]": "pair", "s": "text"}


def test_scalars_become_the_text_or_number_they_hold():
    assert plain(encode(b"hi")) == "aGk="
    assert plain(encode(datetime.date(2024, 1, 2))) == "2024-01-02"
    assert plain(encode(datetime.datetime(2024, 1, 2, 3, 4, 5))) == "2024-01-02T03:04:05"
    assert plain(encode(uuid.UUID(int=1))) == "00000000-0000-0000-0000-000000000001"
    assert plain(encode(decimal.Decimal("1.50"))) == "1.50"
    assert plain(encode(Color.RED)) == "RED"
    assert plain(encode(datetime.timedelta(days=1, seconds=2, microseconds=500000))) == 86402.5


def test_models_and_dataclasses_become_their_fields():
    assert plain(encode(Point(1, ("a", "b")))) == {"x": 1, "tags": ["a", "b"]}
    assert plain({TAG: "model", "class": "m:M", "fields": {"q": {TAG: "tuple", "items": [1]}}}) == {"q": [1]}
    assert plain({TAG: "model_v1", "class": "m:M", "fields": {"q": 2}}) == {"q": 2}


def test_non_finite_floats_stay_floats_and_plain_data_is_itself():
    nan, inf, minus = (plain(encode(v)) for v in (math.nan, math.inf, -math.inf))
    assert math.isnan(nan) and inf == math.inf and minus == -math.inf
    data = {"a": [1, 2.5, "x", True, None], "b": {"c": []}}
    assert plain(data) == data and plain("text") == "text" and plain(3) == 3
    assert json.dumps(plain(encode({"p": Point(2, ())}))) == '{"p": {"x": 2, "tags": []}}'


def test_an_unknown_tag_keeps_its_fields():
    assert plain({TAG: "future", "value": {TAG: "tuple", "items": [1]}}) == {TAG: "future", "value": [1]}
