"""Publish negotiation on a real transport: the answer a publisher gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sfu import sdp
from sfu.options import MediaOptions, WorkerOptions
from sfu.router import Router
from sfu.worker import Worker
from tests.fakes import EventRecorder

SIMULCAST_OFFER = Path(__file__).parent.parent / "data" / "sdp" / "chromium_simulcast_offer.sdp"


@pytest.fixture(params=[True, False], ids=["native", "python"])
async def router(request: pytest.FixtureRequest) -> AsyncIterator[Router]:
    worker = Worker(WorkerOptions(media=MediaOptions(native_fastpath=request.param)))
    yield worker.create_router(on_event=EventRecorder())
    worker.close()
    await worker.wait_closed()


async def test_a_simulcast_publisher_is_answered_with_recv_rids_and_simulcast(
    router: Router,
) -> None:
    # Without them in the answer a browser sends only its first encoding (libwebrtc
    # takes the layers it may send from the answer's a=simulcast recv list).
    transport = await router.create_webrtc_transport()
    result = transport.apply_offer(SIMULCAST_OFFER.read_bytes().decode())

    video = sdp.parse(result.answer).section("1")
    assert video is not None
    assert video.simulcast == "recv q;h;f"
    assert video.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
    lines = result.answer.split("\r\n")
    at = lines.index("a=simulcast:recv q;h;f")
    assert lines[at - 3 : at] == ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv"]
    (producer,) = (p for p in result.added if p.kind == "video")
    assert [stream.rid for stream in producer.streams] == ["q", "h", "f"]
    transport.close()
