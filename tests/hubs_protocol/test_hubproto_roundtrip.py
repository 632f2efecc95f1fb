"""Property tests: every message type survives both formats; junk never crashes."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.errors import InvalidInput, PayloadTooLarge
from ensemble.hubs.protocol import (
    DASHBOARD_MESSAGES,
    FORMATS,
    HUB_MESSAGES,
    Message,
    MessageSet,
    decode,
    encode,
    to_wire,
)
from tests.hubs_protocol.hubproto_strategies import strategy_for_class

# No example database: it would write .hypothesis/ into the shared checkout.
PROPS = settings(database=None, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

CASES = [(cls, HUB_MESSAGES) for cls in HUB_MESSAGES.classes] + [
    (cls, DASHBOARD_MESSAGES) for cls in DASHBOARD_MESSAGES.classes
]
CASE_IDS = [f"{accept.name}-{cls.type}" for cls, accept in CASES]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("cls", "accept"), CASES, ids=CASE_IDS)
def test_round_trip(cls: type[Message], accept: MessageSet[Message], fmt: str) -> None:
    @PROPS
    @given(strategy_for_class(cls))
    def check(msg: Message) -> None:
        frame = encode(msg, fmt)
        got = decode(frame, fmt, accept=accept, max_size=1 << 24)
        assert type(got) is cls
        assert got == msg
        # Encoding is a function of the message alone.
        assert encode(got, fmt) == frame

    check()


@pytest.mark.parametrize(("cls", "accept"), CASES, ids=CASE_IDS)
def test_json_and_msgpack_carry_the_same_envelope(cls: type[Message], accept: MessageSet[Message]) -> None:
    @PROPS
    @given(strategy_for_class(cls))
    def check(msg: Message) -> None:
        from_json = json.loads(encode(msg, "json"))
        from_msgpack = msgpack.unpackb(encode(msg, "msgpack"))
        assert from_json == from_msgpack == to_wire(msg)
        assert next(iter(from_json)) == "type"

    check()


def _refused_cleanly(frame: Any, fmt: str, accept: MessageSet[Message]) -> None:
    try:
        decode(frame, fmt, accept=accept)
    except (InvalidInput, PayloadTooLarge):
        pass


@PROPS
@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_crash_msgpack(frame: bytes) -> None:
    _refused_cleanly(frame, "msgpack", HUB_MESSAGES)


@PROPS
@given(st.text(max_size=256) | st.binary(max_size=256))
def test_arbitrary_text_never_crashes_json(frame: str | bytes) -> None:
    _refused_cleanly(frame, "json", HUB_MESSAGES)


# Breaking one of these may be reported on its partner (command_ack, file_progress).
CROSS_FIELD = {("success", "error"), ("bytes_total", "bytes_sent")}

# Finite floats only: JSON has no NaN (the bad-input table covers msgpack NaN).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize(("cls", "accept"), CASES, ids=CASE_IDS)
def test_mutated_envelopes_decode_or_refuse(cls: type[Message], accept: MessageSet[Message]) -> None:
    """Take a valid envelope, break one field; decode must answer or refuse, never crash."""

    @PROPS
    @given(strategy_for_class(cls), st.data())
    def check(msg: Message, data: st.DataObject) -> None:
        envelope = to_wire(msg)
        key = data.draw(st.sampled_from(sorted(envelope)))
        if data.draw(st.booleans()):
            del envelope[key]
        else:
            envelope[key] = data.draw(JSON_VALUES)
        for fmt in FORMATS:
            frame = json.dumps(envelope, allow_nan=False) if fmt == "json" else msgpack.packb(envelope)
            try:
                got = decode(frame, fmt, accept=accept, max_size=1 << 24)
            except InvalidInput as e:
                field = e.details["field"]
                top = field.split(".")[0].split("[")[0]
                # The refusal names the broken field (or its cross-field partner).
                assert top == key or (key, top) in CROSS_FIELD or field == "type", (field, key)
            else:
                assert isinstance(got, Message)

    check()
