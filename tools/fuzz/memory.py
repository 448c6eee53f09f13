"""Resident memory of a process tree, read from /proc/<pid>/status (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the parent follows the last ")".
    return int(text[text.rindex(")") + 2 :].split()[1])


def process_tree(root: int) -> list[int]:
    """`root` and every live process below it (the front and its media workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def rss_kib(pid: int) -> int | None:
    """VmRSS of one process in KiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def tree_rss_kib(root: int) -> dict[int, int]:
    """pid -> VmRSS (KiB) for `root` and its descendants."""
    found = {}
    for pid in process_tree(root):
        rss = rss_kib(pid)
        if rss is not None:
            found[pid] = rss
    return found
