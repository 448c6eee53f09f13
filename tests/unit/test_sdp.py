from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.sdp import (
    EXT_AUDIO_LEVEL,
    EXT_MID,
    EXT_REPAIRED_RID,
    EXT_RID,
    EXT_TRANSPORT_CC,
    Candidate,
    Codec,
    Direction,
    Extension,
    Fingerprint,
    MediaSection,
    NegotiationError,
    SessionDescription,
    Setup,
    parse,
    serialize,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "sdp"
FIXTURES = sorted(p.name for p in DATA.glob("*.sdp"))


def load(name: str) -> str:
    # Bytes, not read_text(): universal newlines would hide the captured CRLF endings.
    return (DATA / name).read_bytes().decode("utf-8")


def fixture(name: str) -> SessionDescription:
    return parse(load(name))


def section(desc: SessionDescription, mid: str) -> MediaSection:
    found = desc.section(mid)
    assert found is not None
    return found


def codec(m: MediaSection, name: str) -> Codec:
    return next(c for c in m.codecs if c.name == name)


def ext_ids(m: MediaSection) -> dict[str, int]:
    return {e.uri: e.id for e in m.extensions}


MINIMAL = (
    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
)


# --- captured Chromium publish offer -------------------------------------------------------


def test_chromium_publish_offer_is_bundled_sendonly_audio_then_video() -> None:
    desc = fixture("chromium_publish_offer.sdp")
    assert [(m.kind, m.mid, m.direction) for m in desc.media] == [
        ("audio", "0", Direction.SENDONLY),
        ("video", "1", Direction.SENDONLY),
    ]
    assert desc.bundle_mids == ("0", "1")
    assert desc.extmap_allow_mixed
    assert desc.msid_semantic == "WMS 1076dae8-4ac6-41f4-8d6b-20672c471f2f"
    assert desc.origin_session_id == 322384971728420894
    assert desc.origin_session_version == 2
    assert all(m.rtcp_mux and m.rtcp_rsize for m in desc.media)


def test_chromium_publish_offer_audio_codecs_keep_m_line_order_and_parameters() -> None:
    audio = section(fixture("chromium_publish_offer.sdp"), "0")
    assert [(c.payload_type, c.name) for c in audio.codecs] == [
        (111, "opus"), (63, "red"), (9, "G722"), (0, "PCMU"),
        (8, "PCMA"), (13, "CN"), (110, "telephone-event"), (126, "telephone-event"),
    ]  # fmt: skip
    opus = codec(audio, "opus")
    assert (opus.mime_type, opus.clock_rate, opus.channels) == ("audio/opus", 48000, 2)
    assert opus.parameters == {"minptime": "10", "useinbandfec": "1"}
    assert opus.rtcp_fb == ("transport-cc",)
    # RFC 2198 red has a value-less fmtp; it must survive as-is.
    assert codec(audio, "red").fmtp == (("", "111/111"),)
    assert "a=fmtp:63 111/111\r\n" in serialize(fixture("chromium_publish_offer.sdp"))
    assert codec(audio, "PCMU").channels is None


def test_chromium_publish_offer_video_has_vp8_96_with_rtx_97_and_feedback() -> None:
    video = section(fixture("chromium_publish_offer.sdp"), "1")
    vp8 = codec(video, "VP8")
    assert (vp8.payload_type, vp8.mime_type, vp8.clock_rate) == (96, "video/VP8", 90000)
    assert vp8.rtcp_fb == ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    assert vp8.apt is None
    rtx = video.codec(97)
    assert rtx is not None and rtx.name == "rtx" and rtx.apt == 96
    apts = {c.payload_type: c.apt for c in video.codecs if c.name == "rtx"}
    assert apts == {97: 96, 104: 103, 108: 107, 114: 109, 116: 115, 118: 117,
                    40: 39, 46: 45, 99: 98, 101: 100, 120: 119}  # fmt: skip
    h264 = video.codec(109)
    assert h264 is not None and h264.parameters["profile-level-id"] == "42e01f"
    assert [c.name for c in video.codecs if c.payload_type in (45, 98, 121)] == [
        "AV1", "VP9", "ulpfec",
    ]  # fmt: skip


def test_chromium_publish_offer_extension_ids() -> None:
    desc = fixture("chromium_publish_offer.sdp")
    assert ext_ids(section(desc, "0")) == {
        EXT_AUDIO_LEVEL: 1,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
        EXT_TRANSPORT_CC: 3,
        EXT_MID: 4,
    }
    video = section(desc, "1")
    assert video.extension_id(EXT_MID) == 4
    assert video.extension_id(EXT_TRANSPORT_CC) == 3
    assert video.extension_id(EXT_RID) == 10
    assert video.extension_id(EXT_REPAIRED_RID) == 11
    assert video.extension_id("urn:ietf:params:rtp-hdrext:toffset") == 14
    assert video.extension_id("urn:3gpp:video-orientation") == 13
    assert video.extension_id(EXT_AUDIO_LEVEL) is None
    assert all(e.direction is None for e in video.extensions)


def test_chromium_publish_offer_ssrcs_fid_group_cname_and_msid() -> None:
    desc = fixture("chromium_publish_offer.sdp")
    audio, video = desc.media
    assert audio.ssrcs == (1527408863,)
    assert audio.ssrc_groups == ()
    assert video.ssrcs == (356537970, 96395758)
    assert video.ssrc_groups == (("FID", (356537970, 96395758)),)
    assert audio.cname == video.cname == "rG3czg8qCXJrPgg5"
    stream = "1076dae8-4ac6-41f4-8d6b-20672c471f2f"
    assert video.msid == stream + " 12fa22dc-325d-4d4c-bd2f-c2bc7617ba5c"
    assert audio.rids == () and audio.simulcast is None


def test_chromium_publish_offer_ice_and_dtls_resolve_for_the_bundle() -> None:
    desc = fixture("chromium_publish_offer.sdp")
    assert desc.ice_ufrag is None and desc.fingerprints == ()  # all media-level
    fp = Fingerprint(
        algorithm="sha-256",
        value="EC:66:E7:23:CE:B3:45:AE:AE:B4:EE:78:F0:E8:75:4D:"
        "03:1A:FE:95:0A:11:BA:BB:7F:73:E1:DA:AE:20:9C:AC",
    )
    params = desc.transport_parameters()
    assert (params.ice_ufrag, params.ice_pwd) == ("prPM", "H5NiILw+MKLiJDrOiSzoEV9t")
    assert params.fingerprints == (fp,)
    assert params.setup is Setup.ACTPASS
    assert not params.ice_lite
    assert desc.effective_setup is Setup.ACTPASS
    assert all(m.ice_options == ("trickle",) for m in desc.media)


def test_chromium_offer_carries_loopback_host_candidates_on_the_m_line_port() -> None:
    audio = section(fixture("chromium_publish_offer.sdp"), "0")
    first = audio.candidates[0]
    assert (first.host, first.port, first.transport, first.type) == (
        "127.0.0.1", audio.port, "udp", "host",
    )  # fmt: skip
    assert first.priority == 2122194687 and first.component == 1
    assert first.extensions == (("generation", "0"), ("network-id", "3"), ("network-cost", "50"))
    assert audio.default_address == "127.0.0.1"
    hosts = {(c.transport, c.host) for c in audio.candidates}
    assert ("udp", "::1") in hosts and ("tcp", "127.0.0.1") in hosts
    tcp = next(c for c in audio.candidates if c.transport == "tcp")
    assert (tcp.tcptype, tcp.port) == ("active", 9)
    assert not audio.end_of_candidates  # Chromium signals completion out of band


# --- other captures ------------------------------------------------------------------------


def test_chromium_recvonly_offer_has_no_ssrcs_and_more_decoders() -> None:
    desc = fixture("chromium_recvonly_offer.sdp")
    assert [(m.kind, m.direction) for m in desc.media] == [
        ("audio", Direction.RECVONLY),
        ("video", Direction.RECVONLY),
    ]
    assert all(m.ssrcs == () and m.msid is None and m.cname is None for m in desc.media)
    assert desc.msid_semantic == "WMS"
    video = section(desc, "1")
    vp9_profiles = [c.parameters["profile-id"] for c in video.codecs if c.name == "VP9"]
    assert vp9_profiles == ["0", "2", "1", "3"]
    flexfec = video.codec(49)
    assert flexfec is not None and flexfec.name == "flexfec-03"
    assert codec(section(desc, "0"), "opus").payload_type == 111


def test_chromium_simulcast_offer_has_rids_and_simulcast_but_no_ssrcs() -> None:
    video = section(fixture("chromium_simulcast_offer.sdp"), "1")
    assert video.rids == (("q", "send"), ("h", "send"), ("f", "send"))
    assert video.simulcast == "send q;h;f"
    assert video.ssrcs == () and video.ssrc_groups == ()
    assert video.extension_id(EXT_RID) == 10
    assert video.extension_id(EXT_REPAIRED_RID) == 11
    dd = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
    assert video.extension_id(dd) == 12
    assert video.msid is not None


def test_rid_restrictions_are_kept_as_written_and_read_by_name() -> None:
    # RFC 8851 §4: a=rid:<id> <direction> [pt=<fmt-list>;]<name>[=<value>];...
    text = load("chromium_simulcast_offer.sdp").replace(
        "a=rid:f send\r\n", "a=rid:f send pt=96;max-width=1280; max-height=720;depend\r\n"
    )
    video = section(parse(text), "1")
    assert video.rids == (("q", "send"), ("h", "send"), ("f", "send"))
    assert video.rid_restrictions == (("f", "pt=96;max-width=1280; max-height=720;depend"),)
    assert video.rid_restrictions_of("f") == {
        "pt": "96", "max-width": "1280", "max-height": "720", "depend": "",
    }  # fmt: skip
    assert video.rid_restrictions_of("q") == {}
    assert "a=rid:f send pt=96;max-width=1280; max-height=720;depend\r\n" in serialize(parse(text))
    assert parse(serialize(parse(text))) == parse(text)


@pytest.mark.parametrize(
    ("rid_line", "message"),
    [
        ("a=rid:q send max-width=wide", "rid 'q' max-width 'wide' is not a number"),
        ("a=rid:q send max-height=-1", "rid 'q' max-height '-1' is not a number"),
    ],
)
def test_rid_sizes_that_are_not_numbers_are_refused(rid_line: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        parse(MINIMAL + rid_line + "\r\n")


def test_rid_restrictions_must_name_a_rid_of_the_section() -> None:
    with pytest.raises(NegotiationError, match="restricts rid 'x', which has no a=rid"):
        MediaSection(kind="video", port=9, rids=(("q", "send"),), rid_restrictions=(("x", "a=1"),))


def test_aiortc_offer_is_sendrecv_with_its_own_payload_types() -> None:
    desc = fixture("aiortc_offer.sdp")
    audio, video = desc.media
    assert (audio.direction, video.direction) == (Direction.SENDRECV, Direction.SENDRECV)
    assert [(c.payload_type, c.name) for c in audio.codecs] == [
        (96, "opus"), (9, "G722"), (0, "PCMU"), (8, "PCMA"),
    ]  # fmt: skip
    assert codec(video, "VP8").payload_type == 97
    assert {c.payload_type: c.apt for c in video.codecs if c.name == "rtx"} == {
        98: 97, 100: 99, 102: 101,
    }  # fmt: skip
    assert ext_ids(audio) == {EXT_MID: 1, EXT_AUDIO_LEVEL: 2}
    assert video.ssrc_groups == (("FID", (2463186874, 3261273723)),)
    assert [f.algorithm for f in desc.effective_fingerprints] == ["sha-256", "sha-384", "sha-512"]
    assert desc.msid_semantic == "WMS *"
    # aioice skips loopback: no 127.0.0.1 candidate, and the gathering is complete.
    assert all(c.host != "127.0.0.1" for c in audio.candidates)
    assert audio.end_of_candidates
    assert audio.default_address == audio.candidates[0].host


def test_chromium_answer_to_an_ice_lite_offer_bundles_on_the_first_mid() -> None:
    desc = fixture("chromium_answer.sdp")
    audio, video = desc.media
    assert (audio.direction, video.direction) == (Direction.RECVONLY, Direction.RECVONLY)
    assert desc.effective_setup is Setup.ACTIVE
    assert video.port == 9 and video.candidates == () and video.default_address == "0.0.0.0"
    assert desc.bundle_tag is audio
    assert desc.transport_parameters().candidates == audio.candidates
    assert [c.name for c in video.codecs] == ["VP8", "rtx"]
    assert codec(audio, "opus").rtcp_fb == ("transport-cc",)


def test_handwritten_sfu_offer_is_ice_lite() -> None:
    desc = fixture("handwritten_sfu_offer.sdp")
    assert desc.ice_lite and desc.transport_parameters().ice_lite
    assert section(desc, "0").end_of_candidates


# --- round trip and serialization ----------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_round_trip_preserves_the_parsed_description(name: str) -> None:
    desc = fixture(name)
    text = serialize(desc)
    assert parse(text) == desc
    assert serialize(parse(text)) == text


@pytest.mark.parametrize("name", FIXTURES)
def test_serialize_uses_crlf_and_the_browser_session_header(name: str) -> None:
    text = serialize(fixture(name))
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[:4] == [lines[0], lines[1], "s=-", "t=0 0"] and lines[0] == "v=0"
    assert lines[1].startswith("o=- ")
    first_m = next(i for i, line in enumerate(lines) if line.startswith("m="))
    assert "a=group:BUNDLE 0 1" in lines[:first_m]


def test_lf_only_and_crlf_input_parse_alike() -> None:
    text = load("chromium_publish_offer.sdp")
    assert "\r\n" in text
    assert parse(text.replace("\r\n", "\n")) == parse(text)


def test_unknown_attributes_and_line_types_are_ignored() -> None:
    noisy = MINIMAL.replace("a=mid:0", "a=mid:0\r\na=x-made-up:1 2 3\r\nb=AS:30\r\ni=info")
    assert parse(noisy) == parse(MINIMAL)


def test_session_level_transport_is_written_into_every_section() -> None:
    fp = "sha-256 " + ":".join(["0A"] * 32)
    text = (
        MINIMAL.replace(
            "t=0 0\r\n",
            f"t=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:{'p' * 22}\r\na=fingerprint:{fp}\r\n"
            "a=setup:passive\r\na=group:BUNDLE 0 1\r\n",
        )
        + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n"
    )
    desc = parse(text)
    assert desc.ice_ufrag == "abcd" and section(desc, "0").ice_ufrag is None
    out = serialize(desc)
    assert out.count("a=ice-ufrag:abcd") == 2 and out.count("a=setup:passive") == 2
    assert out.count("a=fingerprint:sha-256 0A:") == 2
    assert parse(out).transport_parameters() == desc.transport_parameters()


def test_serialized_sfu_section_follows_browser_attribute_order() -> None:
    fp = Fingerprint(algorithm="sha-256", value=":".join(["AB"] * 32))
    host = Candidate(foundation="1", component=1, transport="udp", priority=2130706431,
                     host="127.0.0.1", port=40000, type="host")  # fmt: skip
    video = MediaSection(
        kind="video", port=40000, mid="v0", direction=Direction.SENDONLY,
        codecs=(
            Codec(kind="video", payload_type=96, name="VP8", clock_rate=90000,
                  rtcp_fb=("nack", "nack pli")),
            Codec(kind="video", payload_type=97, name="rtx", clock_rate=90000,
                  fmtp=(("apt", "96"),)),
        ),
        extensions=(Extension(id=4, uri=EXT_MID),),
        ssrcs=(1111, 2222), ssrc_groups=(("FID", (1111, 2222)),), cname="sfu", msid="s t",
        rtcp_mux=True, rtcp_rsize=True, ice_ufrag="sfuA", ice_pwd="x" * 22,
        fingerprints=(fp,), setup=Setup.ACTPASS, candidates=(host,), end_of_candidates=True,
    )  # fmt: skip
    desc = SessionDescription(
        origin_session_id=7, bundle_mids=("v0",), ice_lite=True, media=(video,),
        extmap_allow_mixed=True,
    )  # fmt: skip
    assert serialize(desc).split("\r\n") == [
        "v=0", "o=- 7 0 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=ice-lite", "a=group:BUNDLE v0",
        "a=extmap-allow-mixed", "a=msid-semantic: WMS *",
        "m=video 40000 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:sfuA", "a=ice-pwd:" + "x" * 22,
        "a=fingerprint:sha-256 " + fp.value, "a=setup:actpass", "a=mid:v0",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendonly", "a=msid:s t",
        "a=rtcp-mux", "a=rtcp-rsize", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
        "a=ssrc-group:FID 1111 2222", "a=ssrc:1111 cname:sfu", "a=ssrc:1111 msid:s t",
        "a=ssrc:2222 cname:sfu", "a=ssrc:2222 msid:s t",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "a=end-of-candidates", "",
    ]  # fmt: skip
    assert parse(serialize(desc)) == desc


def test_c_line_uses_the_udp_candidate_on_the_m_line_port() -> None:
    def host(address: str, port: int, transport: str = "udp") -> Candidate:
        return Candidate(foundation="1", component=1, transport=transport, priority=1,
                         host=address, port=port, type="host")  # fmt: skip

    opus = Codec(kind="audio", payload_type=111, name="opus", clock_rate=48000, channels=2)
    ipv6_second = (host("10.0.0.1", 5000), host("::1", 6000))
    cases = [
        (6000, ipv6_second, "c=IN IP6 ::1"),
        (9, (host("10.0.0.1", 9, "tcp"),), "c=IN IP4 0.0.0.0"),  # tcp active is never default
        (7000, ipv6_second, "c=IN IP4 0.0.0.0"),
    ]
    for port, candidates, c_line in cases:
        m = MediaSection(kind="audio", port=port, codecs=(opus,), candidates=candidates)
        lines = serialize(SessionDescription(origin_session_id=1, media=(m,))).split("\r\n")
        assert lines[lines.index(f"m=audio {port} UDP/TLS/RTP/SAVPF 111") + 1] == c_line


def test_serializing_an_rtp_section_without_codecs_is_refused() -> None:
    desc = SessionDescription(origin_session_id=1, media=(MediaSection(kind="audio", port=0),))
    with pytest.raises(NegotiationError, match="without codecs"):
        serialize(desc)


def test_wildcard_rtcp_fb_and_static_payload_types_become_codecs() -> None:
    text = MINIMAL.replace(" 111\r\n", " 111 0\r\n") + "a=rtcp-fb:* nack\r\n"
    audio = parse(text).media[0]
    assert [(c.name, c.clock_rate, c.rtcp_fb) for c in audio.codecs] == [
        ("opus", 48000, ("nack",)), ("PCMU", 8000, ("nack",)),
    ]  # fmt: skip


def test_rtx_apt_is_none_unless_a_small_number() -> None:
    def rtx(apt: str) -> Codec:
        return Codec(kind="video", payload_type=97, name="rtx", clock_rate=90000,
                     fmtp=(("apt", apt),))  # fmt: skip

    assert rtx("96").apt == 96
    assert rtx("x").apt is None
    assert rtx("9" * 5000).apt is None  # int() would raise past 4300 digits


def test_direction_reversal_for_answers() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.RECVONLY.reversed() is Direction.SENDONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV


# --- candidates ----------------------------------------------------------------------------


def test_candidate_round_trips_with_related_address_and_trickle_prefix() -> None:
    line = (
        "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx "
        "raddr 192.168.1.10 rport 46154 generation 0 ufrag sfuA"
    )
    cand = Candidate.from_sdp(line)
    assert (cand.type, cand.related_address, cand.related_port) == ("srflx", "192.168.1.10", 46154)
    assert cand.extensions == (("generation", "0"), ("ufrag", "sfuA"))
    assert "candidate:" + cand.to_sdp() == line
    assert Candidate.from_sdp("a=" + line) == cand


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1 1 udp 100 10.0.0.1 5000 host", "malformed candidate"),
        ("1 1 udp 100 10.0.0.1 notaport typ host", "candidate port"),
        ("1 1 udp 100 10.0.0.1 70000 typ host", "candidate port"),
        ("1 1 udp 100 10.0.0.1 5000 typ host raddr", "unpaired"),
        ("1 0 udp 100 10.0.0.1 5000 typ host", "component"),
        ("bad! 1 udp 100 10.0.0.1 5000 typ host", "foundation"),
    ],
)
def test_malformed_candidates_raise_negotiation_error(value: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        Candidate.from_sdp(value)


# --- malformed SDP -------------------------------------------------------------------------


def _with_m(m_line: str) -> str:
    return MINIMAL.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", m_line)


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("", "must start with 'v=0'"),
        ("hello world", "must start with 'v=0'"),
        ("v=1\r\n" + MINIMAL[5:], "must start with 'v=0'"),
        ("v=0\r\nnot a line\r\n", "line 2 is not '<type>=<value>'"),
        (MINIMAL.replace("o=- 1 2 IN IP4 0.0.0.0\r\n", ""), "no o= line"),
        (MINIMAL.replace("o=- 1 2", "o=- one 2"), "session id"),
        (MINIMAL.split("m=")[0], "no m= sections"),
        (_with_m("m=audio 9"), "bad m-line"),
        (_with_m("m=audio nine UDP/TLS/RTP/SAVPF 111"), "port 'nine' is not a number"),
        (_with_m("m=audio 99999 UDP/TLS/RTP/SAVPF 111"), "port 99999 is outside"),
        (_with_m("m=audio 9 UDP/TLS/RTP/SAVPF opus"), "payload type 'opus' is not a number"),
        (_with_m("m=audio 9 UDP/TLS/RTP/SAVPF 200"), "payload type 200 is outside"),
        (_with_m("m=audio 9 UDP/TLS/RTP/SAVPF 111 111"), "repeats a payload type"),
        (_with_m("m=audio \u0663 UDP/TLS/RTP/SAVPF 111"), "is not a number"),
        (_with_m("m=audio " + "9" * 5000 + " UDP/TLS/RTP/SAVPF 111"), "is not a number"),
        (_with_m("m=audio 9 UDP/TLS/RTP/SAVPF 111 96"), "payload type 96 has no a=rtpmap"),
        (MINIMAL + MINIMAL[MINIMAL.index("m=") :], "duplicate mid '0'"),
        (MINIMAL.replace("t=0 0", "t=0 0\r\na=group:BUNDLE 0 7"), "BUNDLE group names mid"),
        (MINIMAL.replace("opus/48000/2", "opus"), "bad a=rtpmap"),
        (MINIMAL + "a=setup:sideways\r\n", "unknown a=setup"),
        (MINIMAL + "a=fingerprint:sha-256 ZZ:00\r\n", "fingerprint is not hex"),
        (MINIMAL + "a=ssrc:abc cname:x\r\n", "ssrc 'abc' is not a number"),
        (MINIMAL + "a=ssrc-group:FID 1 two\r\n", "ssrc-group ssrc"),
        (MINIMAL + "a=ssrc:5 label:x\r\n", "has SSRCs but no cname"),
        (MINIMAL + "a=extmap:0 urn:x\r\n", "extension id 0 is outside"),
        (MINIMAL + "a=extmap:256 urn:x\r\n", "extension id 256 is outside"),
        (MINIMAL + "a=rid:q sideways\r\n", "bad a=rid"),
        (MINIMAL + "a=ice-ufrag:ab\r\n", "ice-ufrag must be 4..256"),
        (MINIMAL + "a=candidate:1 1 udp 1 host 5000 typ\r\n", "malformed candidate"),
        ("v=0\r\n" + "a=x:" + "y" * (64 * 1024), "larger than 65536 bytes"),
        ("v=0\r\n" + "a=x:" + "\u00e9" * 33000, "larger than 65536 bytes"),
    ],
)
def test_malformed_sdp_raises_negotiation_error_with_a_reason(sdp: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        parse(sdp)


def test_negotiation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("nonsense")


def test_media_can_be_optional() -> None:
    desc = parse(MINIMAL.split("m=")[0], require_media=False)
    assert desc.media == () and desc.bundle_tag is None
    with pytest.raises(NegotiationError, match="no usable m-section"):
        desc.transport_parameters()


def test_missing_fingerprint_is_reported_when_resolving_the_transport() -> None:
    desc = parse(MINIMAL + f"a=ice-ufrag:abcd\r\na=ice-pwd:{'p' * 22}\r\n")
    with pytest.raises(NegotiationError, match="fingerprint"):
        desc.transport_parameters()


# --- fuzzing -------------------------------------------------------------------------------

_LINES = sorted({line for name in FIXTURES for line in load(name).split("\r\n") if line})
_junk = st.one_of(
    st.text(alphabet=" :/=;*~.-0123456789abcdefAF\t\r\u00e9\u0663", max_size=4),
    st.text(max_size=3),
)


@st.composite
def _edited_fixture(draw: st.DrawFn) -> str:
    """A captured SDP with a few lines dropped, doubled, spliced with junk or borrowed
    from another capture: mostly still SDP, so the success path is exercised too."""
    lines = load(draw(st.sampled_from(FIXTURES))).split("\r\n")
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["drop", "double", "splice", "borrow"])):
            case "drop":
                del lines[at]
            case "double":
                lines.insert(at, lines[at])
            case "splice":
                cut = draw(st.integers(0, len(lines[at])))
                junk = draw(_junk)
                lines[at] = lines[at][:cut] + junk + lines[at][cut + len(junk) :]
            case _:
                lines.insert(at, draw(st.sampled_from(_LINES)))
        if not lines:
            break
    return draw(st.sampled_from(["\r\n", "\n"])).join(lines)


def _parse_or_reject(text: str) -> SessionDescription | None:
    try:
        return parse(text)
    except NegotiationError as exc:
        assert str(exc)  # every rejection says why
        return None


@given(st.text())
def test_arbitrary_text_parses_or_raises_negotiation_error(text: str) -> None:
    _parse_or_reject(text)


@settings(max_examples=300, deadline=None)
@given(_edited_fixture())
def test_edited_captures_parse_or_raise_and_what_parses_round_trips(text: str) -> None:
    desc = _parse_or_reject(text)
    if desc is not None:
        out = serialize(desc)
        assert parse(out) == _transport_in_every_section(desc)
        assert serialize(parse(out)) == out


def _transport_in_every_section(desc: SessionDescription) -> SessionDescription:
    """What serialize() promises: session-level ICE/DTLS values move into the sections."""
    media = tuple(
        replace(
            m,
            ice_ufrag=m.ice_ufrag or desc.ice_ufrag,
            ice_pwd=m.ice_pwd or desc.ice_pwd,
            fingerprints=m.fingerprints or desc.fingerprints,
            setup=m.setup or desc.setup,
        )
        for m in desc.media
    )
    return replace(desc, ice_ufrag=None, ice_pwd=None, fingerprints=(), setup=None, media=media)


def test_an_fmtp_parameter_without_a_key_round_trips() -> None:
    # Found by the fuzz test: "=evel..." used to lose its "=" on the way back out.
    text = (DATA / "chromium_publish_offer.sdp").read_text()
    edited = text.replace("a=fmtp:109 level-asymmetry", "a=fmtp:109 =evel-asymmetry", 1)
    assert edited != text
    parsed = parse(edited)
    assert parse(serialize(parsed)) == parsed
    codec = next(c for s in parsed.media for c in s.codecs if c.payload_type == 109)
    assert codec.fmtp[0] == ("", "=evel-asymmetry-allowed=1")
