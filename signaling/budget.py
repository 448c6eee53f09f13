"""Per-identity rate limits in a room: token buckets shared by all of a person's
connections, so opening more connections buys no more messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`burst` at once, `rate` per second sustained. Starts full."""

    rate: float
    burst: int
    allowance: float = -1.0  # below zero: not used yet, so full
    checked_at: float = 0.0

    def take(self, now: float) -> float:
        """Spend one token: 0.0 if there was one, else the seconds until there is."""
        if self.allowance < 0:
            allowance = float(self.burst)
        else:
            allowance = min(float(self.burst), self.allowance + (now - self.checked_at) * self.rate)
        self.checked_at = now
        if allowance < 1.0:
            self.allowance = allowance
            return (1.0 - allowance) / self.rate
        self.allowance = allowance - 1.0
        return 0.0


@dataclass(slots=True)
class Budget:
    """One identity's allowances in one room: every command, and chat on top."""

    commands: TokenBucket
    chat: TokenBucket
