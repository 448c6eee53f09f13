"""A publisher's offer answered by a real WebRTC transport: the full answer, as sent."""

from __future__ import annotations

from pathlib import Path

from sfu import sdp
from sfu.router import Router

DATA = Path(__file__).resolve().parents[1] / "data" / "sdp"


async def test_a_simulcast_offer_is_answered_with_its_rids_and_simulcast_line(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    try:
        result = transport.apply_offer((DATA / "chromium_simulcast_offer.sdp").read_text())
        video = next(s for s in sdp.parse(result.answer).media if s.kind == "video")
        # Chromium keeps only the encodings the answer names: without these lines it
        # would send the lowest one alone.
        assert video.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
        assert video.simulcast == "recv q;h;f"
        (producer,) = (p for p in result.added if p.kind == "video")
        assert [s.rid for s in producer.streams] == ["q", "h", "f"]
    finally:
        transport.close()
