"""The sans-IO handshake state machines, driven byte by byte without sockets."""

from __future__ import annotations

import hashlib
import struct

import pytest

from py_nodes.erldist import HandshakeError
from py_nodes.erldist import flags as F
from py_nodes.erldist.handshake import Acceptor, Initiator, Status, digest

COOKIE = b"monster"


def pair(
    status: Status = "ok", *, a_cookie: bytes = COOKIE, b_cookie: bytes = COOKIE, a_flags: int = F.OUR_FLAGS
) -> tuple[Initiator, Acceptor]:
    a = Initiator("a@host", a_flags, 11, a_cookie, challenge=1234)
    b = Acceptor("b@host", F.OUR_FLAGS, 22, b_cookie, lambda name: status, challenge=5678)
    return a, b


def pump(a: Initiator, b: Acceptor, *, byte_by_byte: bool = False) -> None:
    """Move bytes both ways until nothing is left to send."""
    a.start()
    while True:
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
                for chunk in chunks:
                    dst.receive_data(chunk)
        if not moved:
            return


def test_digest_matches_dist_util_definition() -> None:
    assert digest(5678, COOKIE) == hashlib.md5(b"monster5678").digest()


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_successful_handshake_exchanges_names_flags_creation(byte_by_byte: bool) -> None:
    a, b = pair()
    pump(a, b, byte_by_byte=byte_by_byte)
    assert a.done and b.done
    assert (a.peer_name, a.peer_creation, a.peer_flags) == ("b@host", 22, F.OUR_FLAGS)
    assert (b.peer_name, b.peer_creation, b.peer_flags) == ("a@host", 11, F.OUR_FLAGS)


def test_send_name_packet_layout() -> None:
    a, _ = pair()
    a.start()
    data = a.data_to_send()
    assert data[:2] == (1 + 14 + 6).to_bytes(2, "big")
    assert data[2:3] == b"N"
    assert struct.unpack(">QIH", data[3:17]) == (F.OUR_FLAGS, 11, 6)
    assert data[17:] == b"a@host"


def test_our_flags_include_what_otp_25_to_27_require() -> None:
    for required in (F.MANDATORY_25, F.MANDATORY_26, F.MANDATORY_25_DIGEST, F.DIST_MONITOR,
                     F.DIST_MONITOR_NAME, F.SPAWN):  # fmt: skip
        assert F.OUR_FLAGS & required == required
    assert F.OUR_FLAGS & (F.DIST_HDR_ATOM_CACHE | F.FRAGMENTS | F.NAME_ME | F.PUBLISHED) == 0


def test_wrong_cookie_is_detected_by_the_acceptor_without_leaking_it() -> None:
    a, b = pair(a_cookie=b"wrong-one")
    with pytest.raises(HandshakeError) as exc:
        pump(a, b)
    assert "wrong cookie" in str(exc.value)
    assert "monster" not in str(exc.value) and "wrong-one" not in str(exc.value)
    assert not b.done and "monster" not in repr(b)


def test_wrong_ack_digest_is_detected_by_the_initiator() -> None:
    a, b = pair()
    a.start()
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    ack = bytearray(b.data_to_send())
    ack[-1] ^= 0xFF
    with pytest.raises(HandshakeError, match="wrong cookie"):
        a.receive_data(bytes(ack))


def test_peer_missing_mandatory_flags_gets_not_allowed() -> None:
    a, b = pair(a_flags=F.OUR_FLAGS & ~F.MAP_TAG & ~F.UTF8_ATOMS)
    a.start()
    with pytest.raises(HandshakeError, match="MAP_TAG") as exc:
        b.receive_data(a.data_to_send())
    assert "UTF8_ATOMS" in str(exc.value)
    assert b.data_to_send() == b"\x00\x0csnot_allowed"


@pytest.mark.parametrize("status", ["nok", "not_allowed"])
def test_refusal_statuses_end_both_sides(status: Status) -> None:
    a, b = pair(status)
    a.start()
    with pytest.raises(HandshakeError):
        b.receive_data(a.data_to_send())
    with pytest.raises(HandshakeError, match=status):
        a.receive_data(b.data_to_send())
    assert a.status == status


def test_simultaneous_connect_loser_continues_with_ok_simultaneous() -> None:
    a, b = pair("ok_simultaneous")
    pump(a, b)
    assert a.done and b.done and a.status == "ok_simultaneous"


def test_alive_is_answered_true_and_the_handshake_goes_on() -> None:
    a, b = pair("alive")
    pump(a, b)
    assert a.done and b.done and a.status == "alive"


def test_leftover_bytes_after_the_ack_are_kept_for_the_connection() -> None:
    a, b = pair()
    a.start()
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send() + b"\x00\x00\x00\x00")
    assert a.done and a.leftover == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "packet",
    [b"\x00\x00", b"\x20\x00" + b"x" * 10, b"\x00\x03Nab", b"\x00\x01n", b"\x00\x02zz"],
)
def test_garbage_raises_handshake_error(packet: bytes) -> None:
    b = Acceptor("b@host", F.OUR_FLAGS, 1, COOKIE, lambda name: "ok")
    with pytest.raises(HandshakeError):
        b.receive_data(packet)


def test_name_without_at_sign_is_refused() -> None:
    b = Acceptor("b@host", F.OUR_FLAGS, 1, COOKIE, lambda name: "ok")
    body = b"N" + struct.pack(">QIH", F.OUR_FLAGS, 1, 5) + b"nohost"[:5]
    with pytest.raises(HandshakeError, match="malformed node name"):
        b.receive_data(len(body).to_bytes(2, "big") + body)
