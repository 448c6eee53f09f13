"""The edge side of a spread room answers every request from the home, even when
something unexpected fails, so the home never waits out its timeout."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from sfu.worker import Worker
from signaling.spread import messages as m
from signaling.spread.edge import EdgeSession, _Subscriber


class _BrokenTransport:
    def create_offer(self) -> str:
        raise RuntimeError("a defect, not a refusal")


async def test_a_request_that_fails_unexpectedly_is_answered_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[Any] = []
    session = EdgeSession(Worker(), pipe_address="127.0.0.1", send=sent.append)
    room = SimpleNamespace(subscribers={"viewer": _Subscriber(_BrokenTransport())})  # type: ignore[arg-type]
    session.rooms["home:demo"] = room  # type: ignore[assignment]

    await session.handle(m.MakeOffer(room="home:demo", id=7, subscriber="viewer"))

    assert sent == [m.Reply(room="home:demo", id=7, error="internal error on the edge worker")]
    assert [r for r in caplog.records if r.levelno == logging.ERROR]


async def test_a_refused_request_is_answered_with_the_reason() -> None:
    sent: list[Any] = []
    session = EdgeSession(Worker(), pipe_address="127.0.0.1", send=sent.append)

    await session.handle(m.MakeOffer(room="home:gone", id=8, subscriber="viewer"))

    (reply,) = sent
    assert (reply.id, reply.error) == (8, "room home:gone is not open here")


async def test_a_mirrored_producer_keeps_the_priority_the_home_gave_it() -> None:
    sent: list[Any] = []
    session = EdgeSession(Worker(), pipe_address="127.0.0.1", send=sent.append)
    await session.handle(m.OpenRoom(room="home:demo", id=1, pipe_host="127.0.0.1", pipe_port=9))
    for producer_id, priority in (("screen", 3), ("camera", 1)):
        await session.handle(
            m.Produce(
                room="home:demo", producer_id=producer_id, kind="video", codec="VP8",
                clock_rate=90000, ssrcs=[1 if priority == 1 else 2], stream_id="pat",
                track_id=producer_id, priority=priority,
            )
        )  # fmt: skip
    mirrors = session.rooms["home:demo"].mirrors
    assert {str(k): p.priority for k, p in mirrors.items()} == {"screen": 3, "camera": 1}
    assert m.Produce(
        room="r", producer_id="x", kind="audio", codec="opus", clock_rate=48000, ssrcs=[3],
        stream_id="s", track_id="t",
    ).priority == 1  # fmt: skip
    session.close()


async def test_a_mirror_follows_the_homes_new_ranking() -> None:
    session = EdgeSession(Worker(), pipe_address="127.0.0.1", send=lambda message: None)
    await session.handle(m.OpenRoom(room="home:demo", id=1, pipe_host="127.0.0.1", pipe_port=9))
    await session.handle(
        m.Produce(
            room="home:demo", producer_id="camera", kind="video", codec="VP8", clock_rate=90000,
            ssrcs=[1], stream_id="pat", track_id="camera",
        )
    )  # fmt: skip
    await session.handle(m.RankProducer(room="home:demo", producer_id="camera", priority=2))
    await session.handle(m.RankProducer(room="home:demo", producer_id="gone", priority=2))
    assert [p.priority for p in session.rooms["home:demo"].mirrors.values()] == [2]
    session.close()
