"""CPU time and memory of a process tree, and the machine, from /proc (Linux only)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TypedDict

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1  # /proc/stat's first line sums every CPU of the machine
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def _ticks(fields: list[str]) -> int:
    # fields[11..14] are utime, stime, cutime, cstime (stat(5) fields 14-17)
    return sum(int(v) for v in fields[11:15])


def cpu_seconds(root: int) -> float:
    """utime + stime of the tree, plus what its processes' reaped children used."""
    ticks = 0
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += _ticks(fields)
    return ticks / CLOCK_TICKS


def process_cpu(root: int) -> dict[int, tuple[str, float]]:
    """Per process of the tree: its command line and CPU seconds (as in cpu_seconds)."""
    out = {}
    for pid in descendants(root):
        fields = _stat_fields(pid)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if fields is not None:
            out[pid] = (command.decode(errors="replace").strip(), _ticks(fields) / CLOCK_TICKS)
    return out


def rss_bytes(root: int) -> int:
    total = 0
    for pid in descendants(root):
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        total += resident * PAGE_SIZE
    return total


class ProcessStatus(TypedDict):
    rss: int  # resident memory (VmRSS), bytes
    threads: int
    fds: int  # open descriptors


def process_status(pid: int) -> ProcessStatus | None:
    """One process's resident memory (VmRSS, bytes), threads and open descriptors, from
    /proc/<pid>/status and /proc/<pid>/fd; None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
    return {"rss": rss_kb * 1024, "threads": int(fields.get("Threads", "0")), "fds": fds}


def udp_errors() -> tuple[int, int]:
    """(RcvbufErrors, SndbufErrors) of the machine's UDP since boot, from /proc/net/snmp:
    datagrams dropped because a socket's receive (send) buffer was full. Loopback has no
    other place to lose them."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = (line[1:] for line in lines if line[0] == "Udp:")
    counters = dict(zip(names, values, strict=True))
    return int(counters.get("RcvbufErrors", 0)), int(counters.get("SndbufErrors", 0))


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }
