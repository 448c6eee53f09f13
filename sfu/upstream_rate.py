"""The bitrate a simulcast publisher is asked for (REMB): what its viewers' tiles need.

A browser spends the REMB it gets on its simulcast encodings bottom up: Chromium
gives each encoding its target before it considers the next one, and switches off
an encoding whose minimum the remainder does not reach. So asking for a little more
than the encodings up to the highest one a viewer wants keeps those running and
stops the ones above: no 720p is encoded and sent while no tile shows it large.

The need is what the viewers' tiles want (`Consumer.wanted_layer`, from the tile's
size), never what a viewer's downlink carries: a viewer on a bad link is forwarded
a lower encoding by the SFU, while the publisher keeps sending what the others need.
(Relaying the slowest viewer's estimate upstream starves everyone.)

Going up takes effect at once: a viewer who enlarges a tile must not wait for the
next report. Going down waits `HOLD` seconds, so a tile that flickers between two
sizes does not switch the publisher's top encoding off and on.
"""

from __future__ import annotations

from collections.abc import Sequence

# Over the sum of the wanted encodings' rates: room for the highest of them to grow to
# its maximum and for key frames, while staying under what the next encoding needs to
# start (Chromium's 720p ladder starts its top encoding only when 150 + 500 kbit/s for
# the lower two leave its 600 kbit/s minimum: 1.3 x 650 + 64 = 909 kbit/s does not).
HEADROOM = 1.3
# The REMB caps the whole connection: audio (Opus, ~40 kbit/s) and packet overhead
# are paid from it before the video encodings get anything.
ALLOWANCE_BPS = 64_000
# How long a lower need waits before the REMB follows it down.
HOLD = 5.0
# Measurements (one a second, of something sent) before the need replaces the
# ceiling: a browser starts from a low rate and ramps up, so its first seconds
# understate its encodings.
WARM_UP = 5
# Each encoding's rate is its recent peak, decaying by this factor a second: a still
# picture lowers what an encoder sends, not what the browser reserves for it, and a
# need that followed the dip could switch a wanted encoding off.
PEAK_DECAY = 0.98


def needed_bitrate(rates: Sequence[int], layer: int, ceiling: int) -> int:
    """What to ask of a publisher whose encodings (lowest first) run at `rates` bits/s
    (0: not known) when its viewers want encodings up to `layer`: the sum of those
    rates with headroom, at most `ceiling`; the ceiling itself when the top encoding
    is wanted (nothing above it to stop) or a wanted encoding's rate is not known."""
    top = len(rates) - 1
    wanted = rates[: max(0, layer) + 1]
    if layer >= top or not all(wanted):
        return ceiling
    return min(ceiling, round(sum(wanted) * HEADROOM) + ALLOWANCE_BPS)


class UpstreamRate:
    """One producer's need: which encodings its consumers want, each encoding's rate,
    and the REMB that follows, up at once and down after `HOLD` seconds.

    Consumers report each change of what they want (`want`), so finding the highest
    wanted encoding costs the same however many viewers there are."""

    def __init__(self, *, layers: int, ceiling: int, hold: float = HOLD) -> None:
        if layers < 1:
            raise ValueError("layers: must be >= 1")
        self.ceiling = ceiling
        self._hold = hold
        self._wanting = [0] * layers  # consumers wanting up to each encoding
        self._targets = [0.0] * layers  # measured while a higher encoding was sent
        self._rates = [0.0] * layers  # measured at all
        self._measurements = 0
        self._layer = 0  # the wanted encoding, held on the way down
        self._lower_since: float | None = None
        # The encoding the last REMB was sized for; the top until one was sized.
        self._asked = layers - 1

    def want(self, old: int | None, new: int | None) -> None:
        """A consumer that wanted encodings up to `old` now wants up to `new` (None:
        nothing, e.g. hidden or closed)."""
        top = len(self._wanting) - 1
        if old is not None:
            self._wanting[min(old, top)] -= 1
        if new is not None:
            self._wanting[min(new, top)] += 1

    @property
    def wanted(self) -> int:
        """The highest encoding a consumer wants now; the lowest when nobody consumes (a
        viewer who joins starts at once)."""
        return next((i for i in range(len(self._wanting) - 1, 0, -1) if self._wanting[i]), 0)

    def measured(self, bitrates: Sequence[int]) -> None:
        """The encodings' rates over the last second (0: not sent).

        An encoding's rate counts as its target when a higher one was sent too: the
        highest encoding a browser sends gets what the budget leaves, up to its
        maximum, and a need sized on that would grow with every REMB until it started
        the next encoding. Without such a measurement, any rate of it is used."""
        highest = max((i for i, bps in enumerate(bitrates) if bps > 0), default=-1)
        if highest < 0:
            return
        self._measurements += 1
        for i, bps in enumerate(bitrates[: len(self._rates)]):
            if bps <= 0:  # switched off: it keeps its rate, for when it is wanted again
                continue
            if i < highest:
                self._targets[i] = max(float(bps), self._targets[i] * PEAK_DECAY)
            self._rates[i] = max(float(bps), self._rates[i] * PEAK_DECAY)

    def layer(self, now: float) -> int:
        """The wanted encoding, held for `HOLD` seconds when it goes down."""
        wanted = self.wanted
        if wanted >= self._layer:
            self._layer, self._lower_since = wanted, None
        elif self._lower_since is None:
            self._lower_since = now
        elif now - self._lower_since >= self._hold:
            self._layer, self._lower_since = wanted, None
        return self._layer

    def rose(self, now: float) -> bool:
        """Whether the need went above what the last REMB was sized for: a REMB is due
        now, not at the next report."""
        return self.layer(now) > self._asked

    def ask(self, now: float) -> tuple[int, int]:
        """The REMB to send now, and the wanted encoding it is for."""
        layer = self.layer(now)
        if self._measurements < WARM_UP:
            bps = self.ceiling
        else:
            rates = [round(t or r) for t, r in zip(self._targets, self._rates, strict=True)]
            bps = needed_bitrate(rates, layer, self.ceiling)
        self._asked = len(self._rates) - 1 if bps == self.ceiling else layer
        return bps, layer
