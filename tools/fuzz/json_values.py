"""Values of the wrong JSON type, huge magnitude or odd content, for type confusion.

Some are not expressible as Python values through `json.dumps` (1e999, -0, long digit
runs as written): those are `Raw` literals spliced into the text as they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Raw:
    """A JSON literal written verbatim (possibly invalid JSON on purpose)."""

    text: str


RAW_LITERALS: tuple[str, ...] = (
    "1e999",
    "-1e999",
    "1E400",
    "-0",
    "0.0e-400",
    "1" * 400,
    "-" + "9" * 40,
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "NaN",
    "Infinity",
    "-Infinity",
    "0x10",
    "01",
    "+1",
    ".5",
    "1.",
    "tru",
    "nul",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
    '"\\uZZZZ"',
    '"\\x41"',
)


def confusing_value(rng: random.Random) -> object:
    """A value of any JSON type, biased to edges (huge, empty, nested, odd text)."""
    choice = rng.randrange(24)
    if choice < 6:
        return Raw(rng.choice(RAW_LITERALS))
    simple: tuple[object, ...] = (
        None,
        True,
        False,
        0,
        -1,
        1,
        2**31,
        2**53 + 1,
        2**63,
        -(2**63),
        2**64,
        10**30,
        1e308,
        -1e308,
        5e-324,
        0.5,
        "",
        " ",
        "0",
        "true",
        "null",
        "viewer",
        "\u0000",
        "é",
        "🙂" * 5,
        "\u202e",
        [],
        [1],
        [None],
        {},
        {"a": 1},
        {"type": "ping"},
        [[[[]]]],
    )
    if choice < 20:
        return rng.choice(simple)
    if choice < 22:
        return long_string(rng, rng.choice([65, 129, 301, 2001, 4097, 20000]))
    return [confusing_value(rng) for _ in range(rng.randrange(1, 5))]


def long_string(rng: random.Random, length: int) -> str:
    alphabet = rng.choice(["a", "é", "🙂", "\\", '"', "abcdefgh"])
    return (alphabet * (length // len(alphabet) + 1))[:length]
