"""How many inputs are left to send and until when: shared by every sender of a run."""

from __future__ import annotations

import time


class Budget:
    def __init__(self, inputs: int, seconds: float) -> None:
        self.left = inputs
        self.deadline = time.monotonic() + seconds

    @property
    def spent(self) -> bool:
        return self.left <= 0 or time.monotonic() >= self.deadline

    def take(self, wanted: int) -> int:
        """Claim up to `wanted` inputs; 0 once the count or the time is used up."""
        if self.spent:
            return 0
        granted = min(wanted, self.left)
        self.left -= granted
        return granted

    def give_back(self, unused: int) -> None:
        """Return inputs that were claimed but could not be sent (the socket had closed)."""
        self.left += unused
