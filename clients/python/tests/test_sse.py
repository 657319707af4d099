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
