"""What a run observed: inputs sent, replies seen, and the problems found.

Problems are grouped by a signature (what happened and the mutation behind it), each
with a count and the first reproducer, so a long run reports each defect once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class ProblemKind(StrEnum):
    INTERNAL = "internal_error"  # a reply with code "internal"
    SERVER_LOG = "server_log"  # a traceback or "internal error" in the server's log
    UNEXPECTED_CLOSE = "unexpected_close"  # e.g. 1006: dropped without a close frame
    UNANSWERED = "unanswered"  # a request got no reply within the bound
    MEDIA_LOST = "media_lost"  # the fuzzed media session ended


@dataclass(slots=True)
class Problem:
    kind: ProblemKind
    signature: str
    detail: str
    reproducer: str
    count: int = 1


@dataclass(slots=True)
class Findings:
    sent: Counter[str] = field(default_factory=Counter)  # family -> inputs
    replies: Counter[str] = field(default_factory=Counter)  # "ws:error:bad_message" -> n
    problems: dict[tuple[ProblemKind, str], Problem] = field(default_factory=dict)

    def add(self, kind: ProblemKind, signature: str, detail: str, reproducer: str) -> Problem:
        key = (kind, signature)
        problem = self.problems.get(key)
        if problem is None:
            problem = self.problems[key] = Problem(kind, signature, detail, reproducer)
        else:
            problem.count += 1
        return problem

    def count(self, kind: ProblemKind) -> int:
        return sum(p.count for p in self.problems.values() if p.kind is kind)

    def seen(self, kind: ProblemKind, signature: str) -> int:
        problem = self.problems.get((kind, signature))
        return 0 if problem is None else problem.count

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())
