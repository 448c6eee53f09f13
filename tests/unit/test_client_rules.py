"""The web client's permission rules agree with the server's.

signaling/static/rules.js answers from /static/rules.json (signaling/client_rules.py).
Here rules.js itself runs under Node on that document and is asked, for every command
of the command table, every kind of sender (role, speaker label, viewer-only), stage
access and room mode, whether the page may offer it; the answer must be "yes" exactly
when the stage machine applies the command. The situations are the permission matrix's
(tests/unit/test_permission_matrix.py), where only permission could refuse.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from signaling import audience
from signaling.client_rules import client_rules
from signaling.command_table import DEFINITIONS
from signaling.roles import Role
from signaling.stage.model import Person, RoomPolicy
from tests.stage_builders import person, pid, poll, room
from tests.unit.test_permission_matrix import (
    ACCESSES,
    ACTORS,
    ALLOW,
    CASES,
    ME,
    MODES,
    judge,
    set_stage_access_case,
)

RULES_JS = Path(__file__).resolve().parents[2] / "signaling" / "static" / "rules.js"
# rules.js runs under Node.js (Debian's `nodejs`, which .ci/run installs).
NODE = shutil.which("node")

# Stubs fetch with the served document, loads rules.js, answers [function, ...args] calls.
HARNESS = """
import { readFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
globalThis.fetch = async () => ({ ok: true, json: async () => input.rules });
const rules = await import("./rules.mjs");
process.stdout.write(JSON.stringify(input.calls.map(([name, ...args]) => rules[name](...args))));
"""

BY_COMMAND = {definition.command: definition for definition in DEFINITIONS}


def ask_rules_js(tmp_path: Path, calls: list[list[Any]]) -> list[Any]:
    shutil.copy(RULES_JS, tmp_path / "rules.mjs")
    (tmp_path / "harness.mjs").write_text(HARNESS)
    assert NODE is not None, "Node.js is needed to run rules.js: apt-get install nodejs"
    done = subprocess.run(
        [NODE, str(tmp_path / "harness.mjs")],
        input=json.dumps({"rules": client_rules(), "calls": calls}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answers: list[Any] = json.loads(done.stdout)
    return answers


def as_seen(someone: Person) -> Any:
    """A participant as the page gets it on the wire."""
    return msgspec.to_builtins(audience.describe(someone, None))


def seen_policy(policy: RoomPolicy) -> Any:
    return msgspec.to_builtins(audience.policy(policy))


def test_the_page_offers_every_command_exactly_when_the_server_applies_it(
    tmp_path: Path,
) -> None:
    situations, calls, expected = [], [], []
    for name, actor, viewer_only, access, mode in itertools.product(
        [*CASES, "set_stage_access"], ACTORS, (False, True), ACCESSES, MODES
    ):
        case = CASES[name] if name in CASES else set_stage_access_case(access)
        people, command = case.setup(actor)
        people = [replace(p, viewer_only=viewer_only) if p.participant_id == ME else p
                  for p in people]  # fmt: skip
        state = room(*people, access=access, mode=mode, capacity=10,
                     polls=[poll("lunch")] if case.polls else [])  # fmt: skip
        target = getattr(command, "target", None)
        about = {
            "target": as_seen(state.people[target]) if target is not None else None,
            "role": getattr(command, "role", None),
        }
        you = as_seen(state.people[pid(ME)])
        kind = BY_COMMAND[type(command)].type
        calls.append(["mayDo", kind, you, seen_policy(state.policy), about])
        expected.append(judge(state, command) is ALLOW)
        situations.append(f"{name}-{actor.key}-viewer_only={viewer_only}-{access}-{mode}")
    answers = ask_rules_js(tmp_path, calls)
    wrong = [s for s, answer, allowed in zip(situations, answers, expected, strict=True)
             if answer is not allowed]  # fmt: skip
    assert not wrong, f"rules.js and the server disagree on {len(wrong)}: {wrong[:10]}"


def test_every_command_of_the_table_is_judged_above() -> None:
    built = {type(case.setup(ACTORS[0])[1]) for case in CASES.values()}
    built |= {type(set_stage_access_case(ACCESSES[0]).setup(ACTORS[0])[1])}
    assert {d.command for d in DEFINITIONS} <= built


def test_the_toolbar_rules_are_the_servers(tmp_path: Path) -> None:
    """maySelfJoin, mayRequest and mayEndRoom answer as the server's join, request and
    end-room rules; isModerator as the rule for moderation commands."""
    calls, expected = [], []
    for role, speaker, viewer_only, access, mode in itertools.product(
        Role, (False, True), (False, True), ACCESSES, MODES
    ):
        someone = person(ME, role, speaker=speaker, viewer_only=viewer_only)
        state = room(someone, access=access, mode=mode)
        you, policy = as_seen(someone), seen_policy(state.policy)
        for function, kind in (("maySelfJoin", "join_stage"), ("mayRequest", "request_stage"),
                               ("mayEndRoom", "end_room"), ("isModerator", "invite")):  # fmt: skip
            calls.append([function, you, policy])
            expected.append(["mayDo", kind, you, policy])
    assert ask_rules_js(tmp_path, calls) == ask_rules_js(tmp_path, expected)
