from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

from sfu.observers.speaking import (
    SILENCE_DBOV,
    ActiveSpeakerSelector,
    SpeakingDetector,
    SpeakingOptions,
)

PACKET = 0.02  # Opus 20 ms frames, as Chromium sends
LOUD = 8  # -8 dBov, the fake microphone's beep
SILENT = 127


class Stream:
    """Feeds a detector one packet every 20 ms and records update() results."""

    def __init__(self, detector: SpeakingDetector, start: float = 0.0) -> None:
        self.detector = detector
        self.now = start
        self.changes: list[tuple[float, bool]] = []

    def play(self, level: int, seconds: float) -> None:
        for _ in range(round(seconds / PACKET)):
            self.detector.observe(level, self.now)
            changed = self.detector.update(self.now)
            if changed is not None:
                self.changes.append((round(self.now, 3), changed))
            self.now = round(self.now + PACKET, 6)

    def idle(self, seconds: float, step: float = 0.05) -> None:
        """No packets at all (DTX, muted producer); only the update timer runs."""
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + step, 6)
            changed = self.detector.update(self.now)
            if changed is not None:
                self.changes.append((round(self.now, 3), changed))


def test_new_detector_is_silent() -> None:
    det = SpeakingDetector()
    assert det.update(0.0) is None
    assert not det.speaking
    assert det.loudness(0.0) == SILENCE_DBOV


def test_steady_tone_above_threshold_flips_to_speaking_after_attack() -> None:
    s = Stream(SpeakingDetector())
    s.play(SILENT, 1.0)
    s.play(30, 1.0)
    assert len(s.changes) == 1
    at, state = s.changes[0]
    assert state is True
    assert 1.0 + 0.15 - PACKET <= at <= 1.0 + 0.15 + PACKET


def test_update_reports_each_change_once() -> None:
    det = SpeakingDetector()
    for i in range(20):
        det.observe(10, i * PACKET)
    assert det.update(0.4) is True
    assert det.update(0.41) is None
    assert det.speaking


def test_click_shorter_than_attack_does_not_start_speaking() -> None:
    s = Stream(SpeakingDetector())
    s.play(SILENT, 0.5)
    s.play(0, 0.1)  # very loud, but only 100 ms
    s.play(SILENT, 1.0)
    assert s.changes == []


def test_sound_just_longer_than_attack_starts_speaking() -> None:
    s = Stream(SpeakingDetector())
    s.play(SILENT, 0.5)
    s.play(LOUD, 0.18)
    assert [state for _, state in s.changes] == [True]
    assert s.changes[0][0] == pytest.approx(0.64)


def test_silence_after_hold_flips_back() -> None:
    s = Stream(SpeakingDetector())
    s.play(20, 1.0)
    s.play(SILENT, 2.0)
    assert [state for _, state in s.changes] == [True, False]
    off_at = s.changes[1][0]
    # The last loud packet (0.98 s) leaves the 0.3 s window, then 0.5 s of hold.
    assert 0.98 + 0.3 + 0.5 - PACKET <= off_at <= 0.98 + 0.3 + 0.5 + PACKET


def test_short_pause_between_words_is_bridged() -> None:
    s = Stream(SpeakingDetector())
    for _ in range(5):
        s.play(25, 0.4)
        s.play(SILENT, 0.6)  # < hold + window
    assert [state for _, state in s.changes] == [True]


def test_fake_microphone_beeping_once_a_second_stays_speaking() -> None:
    # Chromium's fake mic, as measured: about 0.3 s at -8 dBov every second.
    s = Stream(SpeakingDetector())
    for _ in range(10):
        s.play(LOUD, 0.3)
        s.play(SILENT, 0.7)
    assert [state for _, state in s.changes] == [True]
    s.play(SILENT, 2.0)
    assert [state for _, state in s.changes] == [True, False]


def test_longer_hold_is_needed_when_the_gaps_exceed_hold_plus_window() -> None:
    short = Stream(SpeakingDetector(SpeakingOptions(hold=0.3)))
    long = Stream(SpeakingDetector(SpeakingOptions(hold=0.8)))
    for s in (short, long):
        for _ in range(4):
            s.play(LOUD, 0.3)
            s.play(SILENT, 0.7)
    assert [state for _, state in short.changes][:4] == [True, False, True, False]
    assert [state for _, state in long.changes] == [True]


def test_level_exactly_at_threshold_counts_as_speaking() -> None:
    s = Stream(SpeakingDetector(SpeakingOptions(threshold_dbov=-50.0)))
    s.play(50, 1.0)
    assert [state for _, state in s.changes] == [True]


def test_level_just_below_threshold_never_counts() -> None:
    s = Stream(SpeakingDetector(SpeakingOptions(threshold_dbov=-50.0)))
    s.play(51, 3.0)
    assert s.changes == []


def test_a_stream_without_packets_for_max_gap_stops_speaking() -> None:
    s = Stream(SpeakingDetector())
    s.play(20, 1.0)
    s.idle(1.5)
    assert [state for _, state in s.changes] == [True, False]
    # The last packet at 0.98 s, 1 s of max_gap, then the next 50 ms update.
    assert 0.98 + 1.0 <= s.changes[1][0] <= 0.98 + 1.0 + 0.05


def test_a_gap_shorter_than_max_gap_is_held_not_read_as_silence() -> None:
    s = Stream(SpeakingDetector(SpeakingOptions(max_gap=1.0)))
    s.play(20, 1.0)
    s.idle(0.9)
    assert [state for _, state in s.changes] == [True]
    s.play(20, 0.5)
    s.play(SILENT, 2.0)
    assert [state for _, state in s.changes] == [True, False]


def test_out_of_range_levels_are_clamped_not_raised() -> None:
    det = SpeakingDetector()
    det.observe(-5, 0.0)
    det.observe(300, 0.02)
    assert det.loudness(0.02) == pytest.approx(10 * math.log10(0.5), abs=1e-9)


def test_loudness_of_a_steady_level() -> None:
    det = SpeakingDetector()
    for i in range(20):
        det.observe(20, i * PACKET)
    assert det.loudness(0.38) == pytest.approx(-20.0)


def test_loudness_is_averaged_in_the_energy_domain() -> None:
    det = SpeakingDetector()
    for i in range(14):
        det.observe(10 if i % 2 else SILENT, i * PACKET)
    # Half the packets at -10 dBov, half silent: 10*log10(0.05) = -13 dBov,
    # where a mean of dB values would say -68.5.
    assert det.loudness(13 * PACKET) == pytest.approx(-13.0, abs=0.05)


def test_loudness_forgets_samples_older_than_the_window_of_heard_audio() -> None:
    det = SpeakingDetector()
    det.observe(5, 0.0)
    for i in range(1, 15):
        det.observe(SILENT, i * PACKET)
    assert det.loudness(0.28) == pytest.approx(10 * math.log10(10**-0.5 / 15), abs=1e-6)
    det.observe(SILENT, 0.30)
    assert det.loudness(0.30) == SILENCE_DBOV


def test_loudness_is_held_across_a_gap_and_silent_once_the_stream_stopped() -> None:
    det = SpeakingDetector(SpeakingOptions(max_gap=1.0))
    det.observe(5, 0.0)
    assert det.loudness(0.99) == pytest.approx(-5.0)
    assert det.loudness(1.0) == SILENCE_DBOV


def test_last_spoke_at_tracks_loud_packets_while_speaking() -> None:
    s = Stream(SpeakingDetector())
    assert s.detector.last_spoke_at is None
    s.play(20, 1.0)
    s.play(SILENT, 2.0)
    assert s.detector.last_spoke_at == pytest.approx(0.98)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SpeakingOptions(threshold_dbov=1.0), "threshold_dbov"),
        (lambda: SpeakingOptions(threshold_dbov=-128.0), "threshold_dbov"),
        (lambda: SpeakingOptions(hold=-0.1), "hold"),
        (lambda: SpeakingOptions(window=0.0), "window"),
        (lambda: SpeakingOptions(attack=-0.1), "attack"),
        (lambda: SpeakingOptions(attack=0.5, window=0.3), "attack"),
        (lambda: SpeakingOptions(max_gap=0.0), "max_gap"),
    ],
)
def test_options_validation_names_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


def test_options_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        SpeakingOptions(-40.0)  # type: ignore[call-arg]
    opts = SpeakingOptions()
    with pytest.raises(AttributeError):
        opts.hold = 1.0  # type: ignore[misc]


# --- ActiveSpeakerSelector --------------------------------------------------


def test_first_audible_key_becomes_dominant_immediately() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector()
    assert sel.update({"a": -127.0, "b": -127.0}, 0.0) is None
    assert sel.update({"a": -40.0, "b": -30.0}, 0.1) == "b"
    assert sel.dominant == "b"


def test_louder_key_within_margin_does_not_take_over() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector(switch_margin_db=6.0, min_dwell=1.0)
    sel.update({"a": -30.0}, 0.0)
    assert sel.update({"a": -30.0, "b": -25.0}, 5.0) is None
    assert sel.dominant == "a"


def test_louder_key_beyond_margin_takes_over_after_dwell() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector(switch_margin_db=6.0, min_dwell=1.0)
    sel.update({"a": -30.0}, 0.0)
    assert sel.update({"a": -30.0, "b": -20.0}, 0.5) is None  # dwell not over
    assert sel.update({"a": -30.0, "b": -20.0}, 1.0) == "b"
    assert sel.update({"a": -10.0, "b": -20.0}, 1.5) is None  # b's dwell now
    assert sel.update({"a": -10.0, "b": -20.0}, 2.0) == "a"


def test_everyone_silent_keeps_the_last_dominant_speaker() -> None:
    sel: ActiveSpeakerSelector[int] = ActiveSpeakerSelector()
    sel.update({1: -20.0, 2: -60.0}, 0.0)
    assert sel.update({1: SILENCE_DBOV, 2: SILENCE_DBOV}, 10.0) is None
    assert sel.dominant == 1


def test_silent_dominant_is_replaced_by_any_audible_key_beyond_margin() -> None:
    sel: ActiveSpeakerSelector[int] = ActiveSpeakerSelector()
    sel.update({1: -20.0}, 0.0)
    assert sel.update({1: SILENCE_DBOV, 2: -70.0}, 3.0) == 2


def test_dominant_key_that_left_is_replaced_without_waiting() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector(min_dwell=1.0)
    sel.update({"a": -20.0, "b": -40.0}, 0.0)
    assert sel.update({"b": -40.0}, 0.1) == "b"


def test_dominant_key_that_left_with_no_one_audible_clears_dominant() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector()
    sel.update({"a": -20.0}, 0.0)
    assert sel.update({"b": SILENCE_DBOV}, 0.1) is None
    assert sel.dominant is None


def test_alternating_speakers_do_not_flap_faster_than_dwell() -> None:
    sel: ActiveSpeakerSelector[str] = ActiveSpeakerSelector(switch_margin_db=6.0, min_dwell=1.0)
    switches = []
    for i in range(100):
        now = i * 0.1
        levels = {"a": -20.0, "b": -40.0} if i % 2 else {"a": -40.0, "b": -20.0}
        if sel.update(levels, now) is not None:
            switches.append(now)
    gaps = [b - a for a, b in itertools.pairwise(switches)]
    assert len(switches) >= 5
    assert all(gap >= 1.0 - 1e-9 for gap in gaps)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ActiveSpeakerSelector(switch_margin_db=-1.0),
        lambda: ActiveSpeakerSelector(min_dwell=-1.0),
    ],
)
def test_selector_rejects_negative_arguments(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()
