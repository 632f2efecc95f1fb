"""HMAC handshake: the documented formula, and each way a hello is refused."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

import pytest

from ensemble.errors import ConfigError, EnsembleError, InvalidInput, Overloaded, Unauthenticated
from ensemble.hubs.protocol import (
    FROM_HUB,
    HandshakeVerifier,
    HubHello,
    canonical_hello,
    decode,
    derive_hub_key,
    encode,
    generate_hub_credentials,
    new_nonce,
    sign_hello,
    sign_hello_with_key,
)
from ensemble.hubs.protocol._messages import HUB_ID_PATTERN, NONCE_PATTERN

HUB = "hub-1"
SECRET = "s3cret-provisioned-at-the-factory"
T0 = 1_700_000_000
KEY = derive_hub_key(HUB, SECRET)


def reason(err: pytest.ExceptionInfo[EnsembleError]) -> str:
    assert type(err.value) is Unauthenticated
    details = err.value.details
    assert isinstance(details, dict)
    return str(details["reason"])


def signed(nonce: str, timestamp: int = T0, hub_id: str = HUB, secret: str = SECRET) -> tuple[str, int, str, str]:
    return hub_id, timestamp, nonce, sign_hello(hub_id, secret, timestamp, nonce)


# --- the wire formula, restated independently of the implementation ---------


def test_canonical_bytes() -> None:
    assert canonical_hello(HUB, T0, "n" * 16) == b"ensemble-hub-auth-v1\nhub-1\n1700000000\nnnnnnnnnnnnnnnnn"


def test_key_derivation_formula() -> None:
    expected = hmac.new(SECRET.encode(), b"ensemble-hub-key-v1\nhub-1", hashlib.sha256).digest()
    assert KEY == expected
    assert len(KEY) == 32
    assert SECRET.encode() not in KEY
    # Bound to the hub id: the same secret on another hub gives another key.
    assert derive_hub_key("hub-2", SECRET) != KEY


def test_signature_formula() -> None:
    nonce = "0123456789abcdef"
    message = b"ensemble-hub-auth-v1\nhub-1\n1700000000\n0123456789abcdef"
    expected = hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert sign_hello(HUB, SECRET, T0, nonce) == expected
    assert sign_hello_with_key(HUB, KEY, T0, nonce) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)


@pytest.mark.parametrize(
    ("hub_id", "timestamp", "nonce", "field"),
    [
        ("hub\n1", T0, "n" * 16, "hub_id"),
        ("", T0, "n" * 16, "hub_id"),
        ("hüb", T0, "n" * 16, "hub_id"),
        (HUB, -1, "n" * 16, "timestamp"),
        (HUB, T0, "n" * 15, "nonce"),
        (HUB, T0, "n" * 16 + "\n", "nonce"),
    ],
)
def test_signing_refuses_ambiguous_inputs(hub_id: str, timestamp: int, nonce: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        sign_hello(hub_id, SECRET, timestamp, nonce)
    assert str(info.value).startswith(field + ":")


def test_empty_secret_is_refused() -> None:
    with pytest.raises(InvalidInput, match="^secret:"):
        derive_hub_key(HUB, "")


def test_generated_credentials() -> None:
    creds = [generate_hub_credentials() for _ in range(20)]
    hub_id, secret = creds[0]  # unpacks like a tuple
    assert str(uuid.UUID(hub_id)) == hub_id
    assert re.fullmatch(HUB_ID_PATTERN, hub_id)
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert len({c.hub_id for c in creds}) == len({c.secret for c in creds}) == 20
    # Whatever it generates can sign and verify.
    nonce = new_nonce()
    sig = sign_hello(hub_id, secret, T0, nonce)
    HandshakeVerifier().verify(hub_id, derive_hub_key(hub_id, secret), T0, nonce, sig, now=T0)


def test_new_nonce() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(re.fullmatch(NONCE_PATTERN, n) for n in nonces)


# --- verification --------------------------------------------------------------


def test_valid_hello_verifies_and_records_its_nonce() -> None:
    v = HandshakeVerifier()
    hub_id, ts, nonce, sig = signed(new_nonce())
    v.verify(hub_id, KEY, ts, nonce, sig, now=T0 + 0.5)
    assert v.statistics().nonces == 1


def test_hello_through_the_codec() -> None:
    nonce = new_nonce()
    hello = HubHello(
        hub_id=HUB,
        firmware="1.0.0",
        timestamp=T0,
        nonce=nonce,
        signature=sign_hello(HUB, SECRET, T0, nonce),
        stream_id="s1",
    )
    got = decode(encode(hello, "msgpack"), "msgpack", accept=FROM_HUB)
    assert isinstance(got, HubHello)
    HandshakeVerifier().verify_hello(got, KEY, now=T0)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, t, n, s: (h, t, n, sign_hello(h, "wrong-secret", t, n)), id="wrong-secret"),
        pytest.param(lambda h, t, n, s: (h, t + 1, n, s), id="timestamp-changed"),
        pytest.param(lambda h, t, n, s: (h, t, n[::-1], s), id="nonce-changed"),
        pytest.param(lambda h, t, n, s: ("hub-2", t, n, s), id="other-hub"),
        pytest.param(lambda h, t, n, s: (h, t, n, s.upper()), id="uppercase-hex"),
        pytest.param(lambda h, t, n, s: (h, t, n, s[:-2]), id="truncated"),
        pytest.param(lambda h, t, n, s: (h, t, n, "zz" * 32), id="not-hex"),
        pytest.param(lambda h, t, n, s: (h, t, n, ""), id="empty"),
    ],
)
def test_bad_signature(tamper: object) -> None:
    v = HandshakeVerifier()
    hub_id, ts, nonce, sig = tamper(*signed("0123456789abcdef"))  # type: ignore[operator]
    with pytest.raises(EnsembleError) as info:
        v.verify(hub_id, KEY, ts, nonce, sig, now=T0)
    assert reason(info) == "bad_signature"
    assert "bad signature" in str(info.value)
    assert v.statistics().nonces == 0  # an unauthenticated peer leaves no trace


@pytest.mark.parametrize("offset", [61, -61, 3600, -86400])
def test_timestamp_outside_skew(offset: int) -> None:
    v = HandshakeVerifier(skew_s=60)
    hub_id, ts, nonce, sig = signed(new_nonce())
    with pytest.raises(EnsembleError) as info:
        v.verify(hub_id, KEY, ts, nonce, sig, now=T0 + offset)
    assert reason(info) == "clock_skew"
    assert "clock skew" in str(info.value)
    assert v.statistics().nonces == 0


@pytest.mark.parametrize("offset", [60, -60, 0])
def test_timestamp_at_the_skew_edge_is_accepted(offset: int) -> None:
    hub_id, ts, nonce, sig = signed(new_nonce())
    HandshakeVerifier(skew_s=60).verify(hub_id, KEY, ts, nonce, sig, now=T0 + offset)


def test_replayed_nonce() -> None:
    v = HandshakeVerifier()
    hub_id, ts, nonce, sig = signed("0123456789abcdef")
    v.verify(hub_id, KEY, ts, nonce, sig, now=T0)
    with pytest.raises(EnsembleError) as info:
        v.verify(hub_id, KEY, ts, nonce, sig, now=T0 + 1)
    assert reason(info) == "replayed_nonce"
    # Also when re-signed with a fresh timestamp: the nonce alone is spent.
    hub_id, ts, nonce, sig = signed("0123456789abcdef", timestamp=T0 + 5)
    with pytest.raises(EnsembleError) as info:
        v.verify(hub_id, KEY, ts, nonce, sig, now=T0 + 5)
    assert reason(info) == "replayed_nonce"


def test_nonces_are_per_hub() -> None:
    v = HandshakeVerifier()
    h, t, n, s = signed("0123456789abcdef")
    v.verify(h, KEY, t, n, s, now=T0)
    h, t, n, s = signed("0123456789abcdef", hub_id="hub-2", secret="other")
    v.verify(h, derive_hub_key("hub-2", "other"), t, n, s, now=T0)
    assert v.statistics().nonces == 2


def test_refusals_have_distinct_messages() -> None:
    v = HandshakeVerifier()
    messages = set()
    h, t, n, s = signed("0123456789abcdef")
    for args in [(h, KEY, t, n, "00" * 32, T0), (h, KEY, t, n, s, T0 + 999), (h, KEY, t, n, s, T0)]:
        try:
            v.verify(*args)
        except Unauthenticated as e:
            messages.add(e.message)
    with pytest.raises(Unauthenticated) as info:
        v.verify(h, KEY, t, n, s, T0)
    messages.add(info.value.message)
    assert len(messages) == 3


def test_nonce_is_remembered_for_the_whole_window_then_forgotten() -> None:
    v = HandshakeVerifier(skew_s=60)
    assert v.nonce_ttl_s == 120
    h, t, n, s = signed("0123456789abcdef")
    v.verify(h, KEY, t, n, s, now=T0 - 60)  # arrives as early as allowed
    # Replay at the last second the timestamp is still valid: caught by the nonce.
    with pytest.raises(EnsembleError) as info:
        v.verify(h, KEY, t, n, s, now=T0 + 60)
    assert reason(info) == "replayed_nonce"
    # After the window the timestamp alone refuses it, and the nonce is dropped.
    with pytest.raises(EnsembleError) as info:
        v.verify(h, KEY, t, n, s, now=T0 + 61)
    assert reason(info) == "clock_skew"
    h2, t2, n2, s2 = signed(new_nonce(), timestamp=T0 + 61)
    v.verify(h2, KEY, t2, n2, s2, now=T0 + 61)
    assert v.statistics().nonces == 1  # the first nonce expired at T0 + 60


def test_nonce_memory_is_bounded_and_fails_closed() -> None:
    v = HandshakeVerifier(skew_s=10, max_nonces=3)
    for i in range(3):
        h, t, n, s = signed(new_nonce(), timestamp=T0 + i)
        v.verify(h, KEY, t, n, s, now=T0 + i)
    h, t, n, s = signed(new_nonce(), timestamp=T0 + 3)
    with pytest.raises(EnsembleError) as info:
        v.verify(h, KEY, t, n, s, now=T0 + 3)
    assert type(info.value) is Overloaded
    assert v.statistics().nonces == 3
    # Once the oldest has expired (ttl 2 * skew = 20 s) there is room again.
    h, t, n, s = signed(new_nonce(), timestamp=T0 + 21)
    v.verify(h, KEY, t, n, s, now=T0 + 21)
    assert v.statistics().nonces == 3


def test_many_hellos_over_time_stay_bounded() -> None:
    v = HandshakeVerifier(skew_s=5, max_nonces=1000)
    for i in range(5000):
        now = T0 + i * 0.1  # 10 hellos per second, 100 live per 10 s window
        h, t, n, s = signed(f"nonce-{i:012d}", timestamp=int(now))
        v.verify(h, KEY, t, n, s, now=now)
        assert v.statistics().nonces <= 101


@pytest.mark.parametrize(
    "kwargs",
    [{"skew_s": 0}, {"skew_s": 60, "nonce_ttl_s": 119}, {"max_nonces": 0}],
)
def test_unsafe_configuration_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        HandshakeVerifier(**kwargs)  # type: ignore[arg-type]
