"""Mutated, confused and random WebSocket frames built from valid client messages.

Each strategy returns a `Frame` labelled with what it did. Frames carry a fresh request
id whenever the mutation leaves room for one, so a reply is tied to its exact frame.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable

from . import json_values
from .frames import Frame, FrameKind
from .json_values import Raw
from .messages import MESSAGE_TYPES, Message, MessageFactory
from .sdp_mutations import mutated_sdp

DEFAULT_MAX_MESSAGE_BYTES = 65536  # server.max_message_bytes
# Past HARD_FACTOR x the limit the WebSocket layer closes the connection (1009): sent
# rarely, since each costs a connection.
HARD_FACTOR = 4
_NESTING_DEPTHS = (16, 64, 256, 1000, 3000, 10000, 50000)


class WsMutator:
    def __init__(
        self,
        rng: random.Random,
        factory: MessageFactory,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.rng = rng
        self.factory = factory
        self.limit = max_message_bytes
        self._ids = itertools.count(1)
        weighted: list[tuple[int, Callable[[], Frame]]] = [
            (14, self.valid),
            (24, self.type_confusion),
            (6, self.missing_or_extra_field),
            (7, self.bad_type_field),
            (4, self.bad_id),
            (7, self.long_strings),
            (2, self.size_edge),
            (5, self.deep_nesting),
            (3, self.invalid_utf8),
            (4, self.binary),
            (6, self.syntax),
            (8, self.byte_flips),
            (6, self.sdp),
            (2, self.duplicate_keys),
            (2, self.bad_token),
        ]
        self._strategies = [s for s, _ in weighted]
        self._table = [strategy for weight, strategy in weighted for _ in range(weight)]

    def frame(self) -> Frame:
        return self.rng.choice(self._table)()

    def request_id(self) -> str:
        return f"f{next(self._ids)}"

    # -- helpers --------------------------------------------------------------------
    def _message(self, kind: str | None = None) -> tuple[Message, str | None]:
        message = self.factory.message(kind)
        request_id = self.request_id()
        message["id"] = request_id
        return message, request_id

    def _text(self, message: Message, label: str, request_id: str | None) -> Frame:
        return Frame(FrameKind.TEXT, dumps(message), label, request_id)

    # -- strategies -----------------------------------------------------------------
    def valid(self) -> Frame:
        message, request_id = self._message()
        return self._text(message, f"valid:{message['type']}", request_id)

    def type_confusion(self) -> Frame:
        """One field (or, sometimes, all of them) gets a value of the wrong type."""
        message, request_id = self._message()
        fields = [k for k in message if k not in ("type", "id")] or ["id"]
        chosen = fields if self.rng.random() < 0.15 else [self.rng.choice(fields)]
        for name in chosen:
            message[name] = json_values.confusing_value(self.rng)
        if "id" in chosen:
            request_id = None
        return self._text(
            message, f"type_confusion:{message['type']}.{'+'.join(chosen)}", request_id
        )

    def missing_or_extra_field(self) -> Frame:
        message, request_id = self._message()
        fields = [k for k in message if k not in ("type", "id")]
        if fields and self.rng.random() < 0.5:
            name = self.rng.choice(fields)
            del message[name]
            label = f"missing_field:{message['type']}.{name}"
        else:
            name = self.rng.choice(["extra", "ID", "Type", "", "__proto__", "type\u0000"])
            message[name] = json_values.confusing_value(self.rng)
            label = f"extra_field:{message['type']}.{name!r}"
        return self._text(message, label, request_id)

    def bad_type_field(self) -> Frame:
        message, request_id = self._message()
        message["type"] = self.rng.choice(
            [
                json_values.confusing_value(self.rng),
                message["type"].upper(),
                message["type"] + " ",
                message["type"] + "\u0000",
                "",
                "error",
                "joined",
                "pong",
                "bye",
                "x" * 10000,
                json_values.long_string(self.rng, 70000),
            ]
        )
        return self._text(message, "bad_type", request_id)

    def bad_id(self) -> Frame:
        message, _ = self._message()
        message["id"] = self.rng.choice(
            [
                "x" * 64,
                "x" * 65,
                "é" * 64,
                "🙂" * 64,
                "",
                json_values.confusing_value(self.rng),
            ]
        )
        request_id = (
            message["id"] if isinstance(message["id"], str) and len(message["id"]) <= 64 else None
        )
        return self._text(message, f"bad_id:{message['type']}", request_id)

    def long_strings(self) -> Frame:
        """String fields just at and past their documented limits, or far past them."""
        message, request_id = self._message()
        fields = [k for k, v in message.items() if isinstance(v, str) and k not in ("type", "id")]
        name = self.rng.choice(fields) if fields else "id"
        limit = {
            "token": 4096,
            "room": 128,
            "resume_token": 128,
            "target": 64,
            "poll_id": 64,
            "text": 2000,
            "question": 300,
            "sdp": 65536,
            "id": 64,
        }.get(name, 64)
        length = self.rng.choice([limit - 1, limit, limit + 1, 2 * limit, 10 * limit])
        message[name] = json_values.long_string(self.rng, length)
        if name == "id":
            request_id = message["id"] if length <= 64 and len(message["id"]) <= 64 else None
        return self._text(message, f"long_string:{message['type']}.{name}={length}", request_id)

    def size_edge(self) -> Frame:
        """Frames sized around server.max_message_bytes, and rarely past the hard limit."""
        message, request_id = self._message(self.rng.choice(["ping", "chat", "publish"]))
        target = self.rng.choice(
            [self.limit - 1, self.limit, self.limit + 1, 2 * self.limit, HARD_FACTOR * self.limit]
            + ([HARD_FACTOR * self.limit + 1] if self.rng.random() < 0.1 else [])
        )
        message["pad"] = ""
        base = len(dumps(message).encode())
        message["pad"] = "p" * max(0, target - base)
        text = dumps(message)
        template = {**message, "pad": "<pad>"}
        pad = len(message["pad"])
        recipe = f"json.dumps({template!r}, ensure_ascii=False).replace('<pad>', 'p' * {pad})"
        return Frame(FrameKind.TEXT, text, f"size:{len(text.encode())}", request_id, recipe)

    def deep_nesting(self) -> Frame:
        depth = self.rng.choice(_NESTING_DEPTHS)
        shape = self.rng.randrange(5)
        if shape == 0:
            text, recipe = "[" * depth + "]" * depth, f"'[' * {depth} + ']' * {depth}"
        elif shape == 1:
            text = '{"a":' * depth + "1" + "}" * depth
            recipe = f"'{{\"a\":' * {depth} + '1' + '}}' * {depth}"
        elif shape == 2:
            text, recipe = "[" * depth, f"'[' * {depth}"
        else:
            message, request_id = self._message()
            fields = [k for k in message if k not in ("type", "id")] or ["extra"]
            name = self.rng.choice(fields)
            message[name] = Raw("<nest>")
            template = dumps(message)
            text = template.replace("<nest>", "[" * depth + "]" * depth)
            recipe = f"{template!r}.replace('<nest>', '[' * {depth} + ']' * {depth})"
            return Frame(
                FrameKind.TEXT,
                text,
                f"nesting:{message['type']}.{name}:{depth}",
                request_id,
                recipe,
            )
        return Frame(FrameKind.TEXT, text, f"nesting:top:{depth}", None, recipe)

    def invalid_utf8(self) -> Frame:
        message, request_id = self._message()
        data = dumps(message).encode()
        cut = self.rng.randrange(len(data) + 1)
        bad = self.rng.choice(
            [
                b"\xff",
                b"\xc3",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
                b"\x80",
                b"\xc0\xaf",
                b"\xfe\xff",
            ]
        )
        data = data[:cut] + bad + data[cut:]
        # As a binary frame the server decodes the JSON itself; as a text frame the
        # WebSocket layer must refuse it (close 1007).
        kind = FrameKind.BINARY if self.rng.random() < 0.8 else FrameKind.RAW_TEXT
        return Frame(kind, data, f"invalid_utf8:{kind.value}", request_id)

    def binary(self) -> Frame:
        choice = self.rng.randrange(4)
        if choice == 0:
            message, request_id = self._message()
            return Frame(FrameKind.BINARY, dumps(message).encode(), "binary:json", request_id)
        if choice == 1:
            message, request_id = self._message()
            data = dumps(message).encode(self.rng.choice(["utf-16", "utf-32", "utf-8-sig"]))
            return Frame(FrameKind.BINARY, data, "binary:other_encoding", request_id)
        size = self.rng.choice([0, 1, 2, 16, 1000, 65536])
        return Frame(FrameKind.BINARY, self.rng.randbytes(size), f"binary:random:{size}")

    def syntax(self) -> Frame:
        message, _ = self._message()
        text = dumps(message)
        variants = [
            text[: self.rng.randrange(len(text))],
            text + ",",
            text + text,
            "[" + text + "]",
            text.replace('"', "'"),
            text.replace(":", "=", 1),
            text[:-1] + ",}",
            "/*c*/" + text,
            "\ufeff" + text,
            " \t\r\n" + text + "\n",
            "",
            " ",
            "null",
            "1",
            '"ping"',
            "[]",
            "{}",
            "{",
            "}",
            '{"type"}',
            '{"type":}',
            "{,}",
            "\u0000",
        ]
        return Frame(FrameKind.TEXT, self.rng.choice(variants), f"syntax:{message['type']}")

    def byte_flips(self) -> Frame:
        message, _ = self._message()
        data = bytearray(dumps(message).encode())
        for _ in range(self.rng.choice([1, 1, 2, 4, 16])):
            if not data:
                break
            index = self.rng.randrange(len(data))
            action = self.rng.randrange(3)
            if action == 0:
                data[index] = self.rng.randrange(256)
            elif action == 1:
                del data[index]
            else:
                data.insert(index, self.rng.choice(b'{}[]",:\\0123456789-etnfalsu \x00\x7f'))
        try:
            return Frame(FrameKind.TEXT, data.decode(), f"byte_flip:{message['type']}")
        except UnicodeDecodeError:
            return Frame(FrameKind.BINARY, bytes(data), f"byte_flip:{message['type']}")

    def sdp(self) -> Frame:
        message, request_id = self._message(self.rng.choice(["publish", "subscribe_answer"]))
        message["sdp"], done = mutated_sdp(self.rng)
        if message["type"] == "publish" and self.rng.random() < 0.3:
            message["sources"] = {
                json_values.long_string(self.rng, self.rng.choice([1, 32, 33])): "screen",
                "0": "camera",
                "1": "microphone",
            }
        return self._text(message, f"sdp:{message['type']}:{done}", request_id)

    def duplicate_keys(self) -> Frame:
        message, request_id = self._message()
        other = self.rng.choice(MESSAGE_TYPES)
        text = dumps(message)[:-1] + f',"type":"{other}","id":"{request_id}"}}'
        return Frame(FrameKind.TEXT, text, f"duplicate_keys:{message['type']}->{other}", request_id)

    def bad_token(self) -> Frame:
        """A join whose token is expired, signed with another secret, or not a JWT."""
        message = self.factory.join()
        request_id = self.request_id()
        message["id"] = request_id
        token = message["token"]
        head, _, rest = token.partition(".")
        message["token"] = self.rng.choice(
            [
                "",
                "x",
                "a.b.c",
                token[:-2],
                token + "x",
                rest,
                "eyJhbGciOiJub25lIn0." + rest,
                head + "." + json_values.long_string(self.rng, 4000),
                token.swapcase(),
            ]
        )
        return self._text(message, "bad_token", request_id)


def dumps(message: Message) -> str:
    """JSON text of `message`, with `Raw` values written verbatim."""
    raws: list[str] = []

    def encode(value: object) -> object:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"\u0000raw{len(raws) - 1}\u0000"
        raise TypeError(type(value).__name__)

    text = json.dumps(message, default=encode, ensure_ascii=False)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\u0000raw{index}\u0000", ensure_ascii=False), raw)
    return text
