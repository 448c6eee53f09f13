"""The native fan-out and the Python fallback put identical bytes on the wire."""

from __future__ import annotations

import pytest

from sfu import fastpath
from sfu.srtp import SrtpProfile
from tests.fanout_driver import run_both


def test_the_native_fan_out_was_built() -> None:
    # The package build compiles it (setup.py); without it this suite would
    # silently test only the fallback.
    assert fastpath.native_available()


# (layers, vp8, temporal): one encoding as before; simulcast layers with and without
# VP8 picture numbering continuity; VP8 renumbering across pauses on one encoding;
# and both VP8 streams with temporal ceilings, reordering and late packets.
STREAMS = {"one-layer": (1, False, False), "simulcast-vp8": (3, True, False),
           "simulcast": (3, False, False), "vp8": (1, True, False),
           "vp8-temporal": (1, True, True), "simulcast-vp8-temporal": (3, True, True)}  # fmt: skip


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("profile", [*SrtpProfile, None], ids=[*map(str, SrtpProfile), "plain"])
@pytest.mark.parametrize("seed", range(4))
def test_native_and_python_packets_are_byte_identical(
    profile: SrtpProfile, seed: int, stream: str
) -> None:
    layers, vp8, temporal = STREAMS[stream]
    python, native = run_both(
        profile, seed, _steps(temporal), layers=layers, vp8=vp8, temporal=temporal
    )
    _assert_identical(python, native)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("profile", [*SrtpProfile, None], ids=[*map(str, SrtpProfile), "plain"])
@pytest.mark.parametrize("seed", range(2))
def test_packets_stamped_with_transport_wide_numbers_are_byte_identical(
    profile: SrtpProfile, seed: int, stream: str
) -> None:
    # The run also requires both send logs (time and size per number) to be equal.
    layers, vp8, temporal = STREAMS[stream]
    steps = _steps(temporal)
    python, native = run_both(
        profile, seed, steps, layers=layers, vp8=vp8, stamp=True, temporal=temporal
    )
    _assert_identical(python, native)
    unstamped, _ = run_both(profile, seed, steps, layers=layers, vp8=vp8, temporal=temporal)
    assert [len(p) for p in python] == [len(p) + 4 for p in unstamped]  # the element is there


def _steps(temporal: bool) -> int:
    return 5000 if temporal else 3000  # a temporal ceiling leaves many packets out


def _assert_identical(python: list[bytes], native: list[bytes]) -> None:
    assert len(python) > 1000
    assert len(native) == len(python)
    for index, (ours, theirs) in enumerate(zip(python, native, strict=True)):
        assert ours == theirs, f"packet {index} differs"
