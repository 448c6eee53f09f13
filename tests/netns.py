"""Real browsers behind a real bottleneck: network namespaces, veth pairs and tbf.

Three namespaces, named with a prefix unique to the run (``ssfu<pid><letter>-``)::

    open (10.77.1.2) ── veth ── (10.77.1.1) srv (10.77.0.1) ── veth ── (10.77.0.2) lim
    publishers, an                 the server       tbf here:            the limited
    unlimited viewer                                lim's downlink       viewer

Nothing is added to the root namespace: both ends of each veth pair are created inside
their namespaces, and every address, route and qdisc lives there. On leaving
`topology()` (also on failure) every process still inside one of the namespaces is
stopped by its pid and the namespaces are deleted, which deletes the veth pairs with them.

Needs root, iproute2 (``ip``, ``tc``) and util-linux (``setpriv``); without them
`require_tools` raises `HarnessError` naming what is missing: a test that cannot build its
network fails, it is not skipped. Only a process killed outright (SIGKILL, or the
pytest-timeout watchdog, which ends the process without unwinding) leaves namespaces
behind: ``ip netns list``, then ``ip netns pids NAME`` and ``ip netns del NAME``.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import json
import os
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from playwright.async_api import Browser, Playwright
from prometheus_client.parser import text_string_to_metric_families

from signaling.auth import issue_token
from signaling.roles import Role
from signaling.settings import ENV_PREFIX, Settings, env_var_name, load_settings

__all__ = [
    "CHROMIUM",
    "HarnessError",
    "Namespace",
    "NetnsServer",
    "Topology",
    "chromium_in",
    "require_tools",
    "serve_in",
    "topology",
]

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
SERVER_PORT = 8080
"""Every namespace is fresh, so the default port is free: no race for an OS-chosen one."""
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# tbf: the queue a link may build before it drops, as a real access link's buffer. A
# quarter of a second: excess is dropped (what congestion control must learn from) instead
# of queued for seconds, which only hides it behind delay.
TBF_LATENCY_MS = 250
# tbf's bucket: at least a couple of full-size packets (a bucket smaller than one packet
# drops every such packet), else about 20 ms at the line rate, so a key frame cannot pass
# at veth speed and the link behaves like the rate it claims.
TBF_MIN_BURST_BYTES = 3000
TBF_BURST_SECONDS = 0.020
BROWSER_NICENESS = 5
"""How much nicer than the test (and the server) the browsers run."""
_CLONE_NEWNET = 0x40000000
_IFNAMSIZ = 15
_runs = itertools.count()


class HarnessError(RuntimeError):
    """The network harness cannot run here, or an ``ip``/``tc`` command failed."""


def require_tools() -> None:
    """Raise `HarnessError` unless this process is root with ``ip``, ``tc``, ``setpriv``
    and Chromium."""
    packages = {"ip": "iproute2", "tc": "iproute2", "setpriv": "util-linux"}
    missing = [
        f"{tool} ({package})" for tool, package in packages.items() if not shutil.which(tool)
    ]
    problems = []
    if missing:
        problems.append(f"not found: {', '.join(missing)}; install those Debian packages")
    if os.geteuid() != 0:
        problems.append("network namespaces need root (run the test as root)")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is not an executable (install Debian's 'chromium')")
    if problems:
        raise HarnessError("the network-namespace harness cannot run: " + "; ".join(problems))


async def _run(*argv: str, check: bool = True) -> str:
    """Run an ``ip``/``tc`` command; its stdout, or `HarnessError` with its stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if check and process.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: exit {process.returncode}: {err.decode().strip()}")
    return out.decode()


@dataclass(frozen=True)
class Namespace:
    """One network namespace of the topology: its name and its own address."""

    name: str
    address: str

    def exec_argv(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec``)."""
        return ["ip", "netns", "exec", self.name, *argv]


@dataclass
class Topology:
    """``srv`` between ``open`` (unlimited) and ``lim`` (its downlink shaped by tbf)."""

    prefix: str
    srv: Namespace
    open: Namespace
    lim: Namespace
    srv_open_address: str
    """The server's address on the veth toward ``open``."""
    srv_lim_address: str
    """The server's address on the veth toward ``lim``."""
    srv_to_lim_device: str
    downlink_kbit: int | None = None

    def server_address_for(self, namespace: Namespace) -> str:
        """The server's address as seen from ``namespace``."""
        if namespace == self.lim:
            return self.srv_lim_address
        if namespace in (self.open, self.srv):
            return self.srv_open_address
        raise ValueError(f"{namespace.name} is not in this topology")

    async def set_downlink(self, rate_kbit: int | None) -> None:
        """Limit ``lim``'s downlink (the server's egress toward it) to ``rate_kbit``
        kbit/s with tbf, replacing any earlier limit; ``None`` lifts the limit."""
        tc = ("tc", "-n", self.srv.name, "qdisc")
        if rate_kbit is None:
            if self.downlink_kbit is not None:
                await _run(*tc, "del", "dev", self.srv_to_lim_device, "root")
            self.downlink_kbit = None
            return
        if rate_kbit <= 0:
            raise ValueError(f"rate_kbit must be positive, got {rate_kbit}")
        burst = max(round(rate_kbit * 1000 / 8 * TBF_BURST_SECONDS), TBF_MIN_BURST_BYTES)
        await _run(
            *tc, "replace", "dev", self.srv_to_lim_device, "root", "tbf",
            "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", f"{TBF_LATENCY_MS}ms",
        )  # fmt: skip
        self.downlink_kbit = rate_kbit

    async def downlink_counters(self) -> dict[str, int]:
        """The shaper's counters so far: ``bytes`` and ``packets`` sent toward ``lim``,
        ``drops`` (over the queue limit), ``overlimits`` (packets that had to wait)."""
        out = await _run(
            "tc", "-s", "-j", "-n", self.srv.name, "qdisc", "show", "dev", self.srv_to_lim_device
        )
        qdiscs: list[dict[str, int]] = json.loads(out)
        root = next((q for q in qdiscs if q.get("root")), {})
        return {key: int(root.get(key, 0)) for key in ("bytes", "packets", "drops", "overlimits")}


@asynccontextmanager
async def topology(prefix: str | None = None) -> AsyncIterator[Topology]:
    """Create the three namespaces and two veth pairs (lo up in each); remove them all,
    after stopping every process left inside, when the block ends, also on failure."""
    require_tools()
    prefix = prefix or f"ssfu{os.getpid()}{'abcdefghijklmnopqrstuvwxyz'[next(_runs) % 26]}-"
    devices = {name: f"{prefix}{name}" for name in ("so", "o", "sl", "l")}
    too_long = [d for d in devices.values() if len(d) > _IFNAMSIZ]
    if too_long:
        raise HarnessError(f"interface names longer than {_IFNAMSIZ} characters: {too_long}")
    topo = Topology(
        prefix=prefix,
        srv=Namespace(f"{prefix}srv", "10.77.1.1"),
        open=Namespace(f"{prefix}open", "10.77.1.2"),
        lim=Namespace(f"{prefix}lim", "10.77.0.2"),
        srv_open_address="10.77.1.1",
        srv_lim_address="10.77.0.1",
        srv_to_lim_device=devices["sl"],
    )
    created: list[Namespace] = []
    try:
        for namespace in (topo.srv, topo.open, topo.lim):
            await _run("ip", "netns", "add", namespace.name)
            created.append(namespace)
            await _run("ip", "-n", namespace.name, "link", "set", "lo", "up")
        links = (
            (devices["so"], topo.srv_open_address, devices["o"], topo.open),
            (devices["sl"], topo.srv_lim_address, devices["l"], topo.lim),
        )
        for server_side, server_address, far_side, far in links:
            # Both ends are born in their namespaces: nothing ever appears in the root one.
            await _run(
                "ip", "link", "add", server_side, "netns", topo.srv.name, "type", "veth",
                "peer", "name", far_side, "netns", far.name,
            )  # fmt: skip
            for namespace, device, address in (
                (topo.srv, server_side, server_address),
                (far, far_side, far.address),
            ):
                ip = ("ip", "-n", namespace.name)
                await _run(*ip, "addr", "add", f"{address}/30", "dev", device)
                await _run(*ip, "link", "set", device, "up")
        yield topo
    finally:
        for namespace in reversed(created):
            await _stop_processes_in(namespace)
        failed = []
        for namespace in reversed(created):
            try:
                await _run("ip", "netns", "del", namespace.name)
            except HarnessError as error:
                failed.append(str(error))
        if failed:
            raise HarnessError("namespaces left behind: " + "; ".join(failed))


async def _stop_processes_in(namespace: Namespace) -> None:
    """Stop whatever still runs in ``namespace`` (only this run's processes can be there),
    by pid: SIGTERM, then SIGKILL for what is left after 5 s."""
    deadline = time.monotonic() + 5.0
    sig = signal.SIGTERM
    while True:
        out = await _run("ip", "netns", "pids", namespace.name, check=False)
        pids = [int(pid) for pid in out.split()]
        if not pids:
            return
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        await asyncio.sleep(0.2)  # let them exit; `ip netns pids` says when they have


def _enter_namespace(name: str) -> None:
    """Move the calling thread (only it: network namespaces are per thread) into ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No proxy from the environment: nothing outside the namespaces is reachable anyway."""


def _http_get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@dataclass
class NetnsServer:
    """The server running in ``srv``: its address from each namespace, join tokens signed
    with its secret, and HTTP requests made from inside ``srv``."""

    topology: Topology
    settings: Settings
    process: asyncio.subprocess.Process
    _http: ThreadPoolExecutor = field(repr=False)

    @property
    def port(self) -> int:
        return self.settings.server.port

    def url(self, namespace: Namespace) -> str:
        """The server's base URL from ``namespace`` (``http://10.77.x.1:8080``)."""
        return f"http://{self.topology.server_address_for(namespace)}:{self.port}"

    def token(self, identity: str, *, room: str = "demo", role: Role = Role.PARTICIPANT) -> str:
        return issue_token(
            self.settings.auth.secret, room=room, identity=identity, name=identity.title(),
            role=role, ttl=3600, now=time.time(),
        )  # fmt: skip

    async def get(self, path: str, *, timeout: float = 5.0) -> tuple[int, str]:
        """``GET path`` from inside ``srv``: (status, body); raises `OSError` if there
        is no answer."""
        url = f"http://{self.topology.srv_open_address}:{self.port}{path}"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._http, _http_get, url, timeout)

    async def metrics(self) -> dict[str, float]:
        """``/metrics``, each sample name summed over its labels (and the workers)."""
        status, text = await self.get("/metrics")
        if status != 200:
            raise HarnessError(f"/metrics answered {status}")
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals


@asynccontextmanager
async def serve_in(
    topo: Topology,
    overrides: Mapping[str, str] | None = None,
    *,
    log: Path | None = None,
) -> AsyncIterator[NetnsServer]:
    """Run ``python -m signaling serve`` in ``srv`` and wait (bounded) for ``/healthz``.

    It listens on every address of ``srv``, offers both veth addresses as ICE candidates,
    and signs tokens with a fresh random secret (the development one is refused off
    loopback). ``server.workers`` stays at its default (a front and one media worker per
    core), as deployed. ``overrides`` are further settings (dotted keys, string values as
    in the environment). Output goes to ``log`` (else inherited). Stopped with SIGTERM by
    its pid when the block ends (SIGKILL if it has not exited after 20 s).
    """
    values = {
        "server.host": "0.0.0.0",
        "server.port": str(SERVER_PORT),
        "auth.secret": secrets.token_urlsafe(32),
        "auth.dev_tokens": "false",  # never minted off loopback anyway; says so in the log
        "media.ice_addresses": f"{topo.srv_open_address},{topo.srv_lim_address}",
        **(overrides or {}),
    }
    env = {env_var_name(*key.split(".", 1)): value for key, value in values.items()}
    settings = load_settings(env=env)  # the same values, validated here first
    # Settings from this process's environment would make the server differ from `settings`.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    output: IO[bytes] | None = log.open("wb") if log is not None else None
    # The readiness probe and /metrics go through one thread that entered srv: no
    # interpreter started per request, so probing costs nothing next to the browsers.
    http = ThreadPoolExecutor(
        max_workers=1, initializer=_enter_namespace, initargs=(topo.srv.name,)
    )
    process = await asyncio.create_subprocess_exec(
        *topo.srv.exec_argv(sys.executable, "-m", "signaling", "serve"),
        env={**inherited, **env}, cwd=REPO, stdout=output, stderr=output,
    )  # fmt: skip
    try:
        running = NetnsServer(topology=topo, settings=settings, process=process, _http=http)
        await _wait_until_healthy(running)
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        http.shutdown(wait=True)
        if output is not None:
            output.close()


async def _wait_until_healthy(server: NetnsServer) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    last = "no answer"
    while loop.time() < deadline:
        if server.process.returncode is not None:
            raise HarnessError(f"the server exited with {server.process.returncode} on start")
        try:
            status, body = await server.get("/healthz", timeout=1.0)
        except OSError as error:
            last = str(error)
        else:
            if status == 200:
                return
            last = f"{status} {body[:200]}"
        await asyncio.sleep(0.1)  # starting up; nothing to wait on but the next probe
    raise HarnessError(f"the server in {server.topology.srv.name} not healthy in time: {last}")


@asynccontextmanager
async def chromium_in(
    playwright: Playwright,
    namespace: Namespace,
    *,
    args: Sequence[str],
    secure_origins: Sequence[str] = (),
) -> AsyncIterator[Browser]:
    """Debian's Chromium launched inside ``namespace`` with ``args``.

    Playwright drives the browser over pipes, which cross namespaces, so only the browser's
    own network is inside: Playwright starts a wrapper script that execs ``ip netns exec
    <namespace> nice setpriv /usr/bin/chromium`` (see below for ``nice`` and ``setpriv``);
    it stays one process whose pid Playwright knows. ``secure_origins`` (e.g. the server's
    URL) count as secure contexts, which the camera and microphone require, although
    served over plain HTTP to an address that is not loopback.
    """
    with tempfile.TemporaryDirectory(prefix=f"{namespace.name}-") as directory:
        wrapper = Path(directory) / "chromium"
        # The browsers stand for other people's machines, so they must not hold up the
        # server on a shared test machine: they run 5 nice levels below whatever the test
        # runs at, and without CAP_SYS_NICE. As root, Chromium would otherwise set its
        # threads' nice values itself (0, and -8 for display threads) whatever it was
        # started with; the server (at the test's niceness) then got a small share of the
        # CPU, its event loop stalled for up to a second and it sent in bursts that a
        # narrow link drops.
        lower = ("nice", "-n", str(BROWSER_NICENESS))
        no_nice = ("setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice")
        command = " ".join(namespace.exec_argv(*lower, *no_nice, str(CHROMIUM)))
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        # Only the namespace's own links: no proxy from the environment.
        extra = ["--no-proxy-server"]
        if secure_origins:
            extra.append(f"--unsafely-treat-insecure-origin-as-secure={','.join(secure_origins)}")
        browser = await playwright.chromium.launch(
            executable_path=wrapper,
            headless=True,
            args=[*args, *extra],
            timeout=30_000,
        )
        try:
            yield browser
        finally:
            await browser.close()
