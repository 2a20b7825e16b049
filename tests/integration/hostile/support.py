"""What the hostile-input suites share: the hypothesis settings, hostile values, and browser-shaped callback requests.

Hostile values are anything JSON carries (the browser's requests are JSON, so NaN arrives as the string "NaN"):
None, booleans, huge and negative integers, floats, strings that look like numbers but are not plain ASCII
integers (``１``, ``1_0``, ``1.0``), very long and odd Unicode strings, lists, dicts and deep nesting. Most requests
change one or two of a callback's values and keep the others valid, so the hostile value reaches the code that
uses it instead of stopping at the first check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Fixed examples (derandomize: the same requests on every run), no example database in the checkout, no deadline
# (a shared CI machine), and the app fixtures are set up once per module, not per example, on purpose.
HOSTILE = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# HOSTILE_EXAMPLES_SCALE=8 runs eight times the examples (a deeper search by hand); make test uses the counts as set.
SCALE = float(os.environ.get("HOSTILE_EXAMPLES_SCALE", "1"))


def examples(count: int) -> settings:
    """:data:`HOSTILE` with ``count`` examples per test (times ``HOSTILE_EXAMPLES_SCALE``)."""
    return settings(HOSTILE, max_examples=max(1, round(count * SCALE)))


# Names the store and the models know: a hostile value that is *almost* right goes deepest.
DOMAIN_STRINGS = [
    "mnist-cnn", "tiny", "legacy-h5", "corrupt", "no-test-set", "empty", "absent", "..", "../model_store",
    "Conv2D_1", "Conv2D_3", "Max_Pool_1", "Flatten", "Dense_1", "Dense_2", "conv", "pool", "hidden", "output",
    "viridis", "jet", "rdbu", "all", "correct", "wrong", "confidence-asc", "index", "mean", "max", "mnist-subset",
    "rmsprop", "adam", "l2", "relu", "power",
]
NUMBER_LOOKALIKES = [
    "", " ", "0", "1", "3", "-1", "１", "1_0", "٣", "1.0", "1e3", "0x10", " 1", "1\n", "+1", "NaN", "nan",
    "Infinity", "-Infinity", "inf", "9223372036854775808", "9" * 30, "9" * 5000, "True", "null", "[]", "{}",
]
ODD_STRINGS = ["\x00", "\ud800", "\udfff", "🙂", "é", "\u202e", "<script>alert(1)</script>", "%00", "a,b", "?", "&",
               "=", "#", "/", "\\", "x" * 20_000]
SPECIAL_INTS = [0, 1, -1, 2, 255, 999, 1000, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**18, 10**30,
                10**400, -(10**400)]
SPECIAL_FLOATS = [0.5, 3.0, -0.0, 0.999, 1.5, 1e-320, 1e308, -1e308, 2.5e15]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(SPECIAL_INTS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(DOMAIN_STRINGS + NUMBER_LOOKALIKES + ODD_STRINGS),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(["points", "customdata", "x", "y", "job", "model", "layer", "unit", "0", "id",
                                  "index", "type", "page", "epochs", "total", "status"]), st.text(max_size=6))


def _deep(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


values = st.one_of(
    st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
        max_leaves=8,
    ),
    st.builds(_deep, st.sampled_from([20, 60, 200]), scalars),
)
"""Any JSON value, hostile."""


def near(value: Any, depth: int = 0) -> st.SearchStrategy:
    """Values shaped like ``value`` (same keys, same length) with some parts hostile, or something else entirely.

    A click on a grid keeps ``{"points": [{"customdata": ...}]}`` but the unit becomes ``"１"``; a view keeps its
    keys but its job id becomes a list: what a forged request sends to get past a type check on the outer shape.
    """
    if depth < 3 and isinstance(value, dict) and value:
        fields = {key: st.one_of(st.just(item), near(item, depth + 1)) for key, item in value.items()}
        return st.one_of(
            st.fixed_dictionaries(fields),
            st.fixed_dictionaries({}, optional=fields),
            st.fixed_dictionaries(fields, optional={"extra": values}),
            values,
        )
    if depth < 3 and isinstance(value, list) and value:
        items = [st.one_of(st.just(item), near(item, depth + 1)) for item in value[:8]]
        return st.one_of(st.tuples(*items).map(list), st.lists(near(value[0], depth + 1), max_size=5), values)
    return values


def hostile(value: Any) -> st.SearchStrategy:
    """Either a hostile value of ``value``'s shape or any hostile value."""
    return near(value)


# ---------------------------------------------------------------- browser-shaped callback requests


def stringify_id(component_id: Any) -> str:
    """How dash-renderer writes a component id in a prop id: dict ids as sorted, compact JSON."""
    if isinstance(component_id, dict):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return str(component_id)


@dataclass(frozen=True)
class Dependency:
    """One server callback as ``/_dash-dependencies`` describes it."""

    output: str
    inputs: list[dict]
    state: list[dict]
    raw: dict

    @property
    def outputs(self) -> list[dict]:
        """``[{"id", "property"}]`` of the output string (``..a.b...c.d..`` or ``a.b``), ids parsed back."""
        text = self.output
        parts = text[2:-2].split("...") if text.startswith("..") else [text]
        found = []
        for part in parts:
            component, prop = part.rsplit(".", 1) if not part.startswith("{") else _split_pattern(part)
            found.append({"id": json.loads(component) if component.startswith("{") else component, "property": prop})
        return found

    @property
    def multi(self) -> bool:
        return self.output.startswith("..")

    @property
    def name(self) -> str:
        """A short, readable test id: the first output, without the duplicate-output hash."""
        first = self.outputs[0]
        return f"{stringify_id(first['id'])}.{first['property'].split('@')[0]}"


def _split_pattern(part: str) -> tuple[str, str]:
    end = part.index("}.") + 1
    return part[:end], part[end + 1:]


def dependencies(client) -> list[Dependency]:
    """Every server callback of the app (clientside ones run in the browser only)."""
    answer = client.get("/_dash-dependencies")
    assert answer.status_code == 200
    return [
        Dependency(item["output"], item["inputs"], item["state"], item)
        for item in answer.get_json()
        if not item.get("clientside_function")
    ]


def wildcard(pattern: dict) -> str | None:
    """``"ALL"`` or ``"MATCH"`` if a pattern id has a wildcard value, else None."""
    for value in pattern.values():
        if isinstance(value, list) and value and value[0] in ("ALL", "MATCH", "ALLSMALLER"):
            return value[0]
    return None


def concrete(pattern: dict, key_value: Any) -> dict:
    """The component id a wildcard pattern matches for one value of its wildcard key."""
    return {key: key_value if isinstance(value, list) else value for key, value in pattern.items()}


def callback_body(dependency: Dependency, inputs: list, state: list, changed: list[str]) -> dict:
    """The JSON body dash-renderer posts to ``/_dash-update-component`` for one callback call.

    Args:
        inputs, state: per dependency entry, ``{"id", "property", "value"}`` (a list of them for an ALL pattern).
        changed: the prop ids that triggered the call (``id.property``, dict ids stringified).
    """
    outputs = dependency.outputs
    match_value = next(
        (entry["id"][key] for entry in inputs + state if isinstance(entry, dict) and isinstance(entry["id"], dict)
         for key, value in entry["id"].items() if key not in ("type",) and not isinstance(value, list)),
        None,
    )
    resolved = [
        {"id": concrete(out["id"], match_value), "property": out["property"]} if isinstance(out["id"], dict) else out
        for out in outputs
    ]
    body = {
        "output": dependency.output,
        "outputs": resolved if dependency.multi else resolved[0],
        "inputs": inputs,
        "changedPropIds": changed,
        "parsedChangedPropsIds": changed,
    }
    if state:
        body["state"] = state
    return body


# ---------------------------------------------------------------- what the server logged


@contextlib.contextmanager
def captured_errors(*logger_names: str) -> Iterator[list[logging.LogRecord]]:
    """Collect ERROR records of the given loggers (e.g. the app's ``on_error`` net: "callback ... failed")."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def describe(records: list[logging.LogRecord]) -> str:
    """The logged failures with the last lines of their tracebacks, for an assertion message."""
    lines = []
    for record in records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.extend(traceback.format_exception(*record.exc_info)[-3:])
    return "\n".join(lines)


def strict_json(data: bytes) -> Any:
    """Decode a response body, refusing bare NaN/Infinity (not JSON: the browser's JSON.parse rejects them)."""

    def refuse(name: str):
        raise ValueError(f"bare {name} in a JSON response")

    return json.loads(data, parse_constant=refuse)
