"""The hand-written Server-Sent Events parser, fed the byte sequences the standard allows
(and the service sends), cut at every possible place."""

from __future__ import annotations

from typing import List

import pytest

from leasehold import LeaseholdError, Trimmed
from leasehold._sse import Message, Parser, read_message

EVENT = (
    b"id: 1-0\n"
    b"event: claimed\n"
    b'data: {"id":"1-0","type":"claimed","item":"c1"}\n'
    b"\n"
)


def feed_all(chunks: List[bytes]) -> List[Message]:
    parser = Parser()
    messages: List[Message] = []
    for chunk in chunks:
        messages.extend(parser.feed(chunk))
    return messages


def test_one_event() -> None:
    (message,) = feed_all([EVENT])
    assert message == Message("claimed", '{"id":"1-0","type":"claimed","item":"c1"}', "1-0")


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_split_of_every_line_ending_gives_the_same_events(ending: bytes) -> None:
    stream = (
        b": keep-alive" + ending
        + b"id: 1-0" + ending + b"event: added" + ending + b"data: {}" + ending + ending
        + b"event: trimmed" + ending + b"data: {}" + ending + ending
        + b"id:2-0" + ending + b"data:a" + ending + b"data: b" + ending + ending
    )
    expected = [
        Message("added", "{}", "1-0"),
        Message("trimmed", "{}", None),
        Message("message", "a\nb", "2-0"),
    ]
    assert feed_all([stream]) == expected
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]) == expected, cut
    # One byte at a time, too.
    assert feed_all([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_comments_and_events_without_data_dispatch_nothing() -> None:
    assert feed_all([b": ping\n\n", b"event: nothing\n\n", b"id: 5-0\n\n"]) == []


def test_an_event_cut_off_is_never_dispatched() -> None:
    # The connection broke before the blank line: nothing is yielded, and the event is
    # sent again after the reconnection.
    assert feed_all([EVENT[:-1]]) == []


def test_a_field_without_a_colon_and_unknown_fields() -> None:
    assert feed_all([b"data\nretry: 10\nfoo: bar\n\n"]) == [Message("message", "", None)]


def test_reading_messages() -> None:
    assert read_message(Message("trimmed", "{}", None)) == Trimmed()
    event = read_message(Message("claimed", '{"id":"1-0","type":"claimed"}', "1-0"))
    assert not isinstance(event, Trimmed) and event["id"] == "1-0"
    with pytest.raises(LeaseholdError):
        read_message(Message("claimed", "not json", "2-0"))
    with pytest.raises(LeaseholdError):
        read_message(Message("claimed", "[1]", "3-0"))


# -- One test for each way a stream may be cut or written ----------------------------------


def test_a_crlf_split_between_chunks_ends_one_line() -> None:
    # The CR ends one chunk and the LF starts the next: one line ending, not two (which
    # would be a blank line, dispatching "a" on its own).
    chunks = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert feed_all(chunks) == [Message("message", "a\nb", None)]


def test_empty_chunks_between_a_cr_and_its_lf() -> None:
    for empties in (1, 3):
        chunks = [b"data: a\r", *([b""] * empties), b"\ndata: b\r", b"", b"\n\r", b"", b"\n"]
        assert feed_all(chunks) == [Message("message", "a\nb", None)], empties
    # An empty chunk anywhere else changes nothing either.
    assert feed_all([b"", EVENT[:5], b"", EVENT[5:], b""]) == feed_all([EVENT])


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b"id: 7-0\ndata: {\"id\":\"7-0\",\ndata:\"type\":\"added\"}\ndata\ndata: \n\n"
    (message,) = feed_all([stream])
    assert message == Message("message", '{"id":"7-0",\n"type":"added"}\n\n', "7-0")
    (two_lines,) = feed_all([b"data: {\"id\":\"7-0\",\ndata: \"type\":\"added\"}\n\n"])
    event = read_message(two_lines)
    assert not isinstance(event, Trimmed) and (event["id"], event["type"]) == ("7-0", "added")


def test_comments_are_skipped_also_inside_an_event() -> None:
    stream = b":\n: keep-alive\nid: 3-0\n: between fields\ndata: x\n:\n\n: after\n\n"
    assert feed_all([stream]) == [Message("message", "x", "3-0")]
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]) == [Message("message", "x", "3-0")]


def test_trimmed_has_no_id_and_does_not_take_the_last_one() -> None:
    stream = EVENT + b"event: trimmed\ndata: {}\n\n" + b"id: 9-0\nevent: added\ndata: {}\n\n"
    first, trimmed, after = feed_all([stream])
    assert first.id == "1-0"
    assert trimmed == Message("trimmed", "{}", None)
    assert read_message(trimmed) == Trimmed()
    assert (after.event, after.id) == ("added", "9-0")


def test_a_utf8_character_split_between_chunks() -> None:
    stream = 'id: 4-0\ndata: {"holder":"Zoë 🦀"}\n\n'.encode()
    expected = [Message("message", '{"holder":"Zoë 🦀"}', "4-0")]
    # Every cut, including those inside the two-byte ë and the four-byte crab.
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]) == expected, cut
    assert feed_all([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_a_byte_order_mark_at_the_start_is_skipped() -> None:
    bom = b"\xef\xbb\xbf"
    assert feed_all([bom + EVENT]) == feed_all([EVENT])
    assert feed_all([bom[:1], bom[1:2], bom[2:] + EVENT]) == feed_all([EVENT])
    # Only at the start: later, it is part of a line.
    (message,) = feed_all([b"data: \xef\xbb\xbfx\n\n"])
    assert message.data == "\ufeffx"
