"""The server's own egress counters, from its Prometheus endpoint.

With thin viewers the bots see one packet in N, so what they count is not what the server
forwarded; the server's counters are. They are read at the window's edges only (a scrape
costs the server a little CPU, charged to the run): `stage_sfu_rtp_packets_sent_total`
(every RTP copy queued for a viewer, retransmissions included) minus
`stage_sfu_socket_packets_dropped_total` (copies the socket then refused), summed over
kinds and, with several media workers, over the workers the front merges. Ingress,
`stage_sfu_rtp_packets_received_total`, against what the publishers sent tells whether
the server kept up: an overloaded worker's sockets overflow (or queue for seconds).
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

SENT = "stage_sfu_rtp_packets_sent_total"
RECEIVED = "stage_sfu_rtp_packets_received_total"
DROPPED = "stage_sfu_rtp_packets_dropped_total"  # not sent to a viewer, socket drops included
SOCKET_DROPPED = "stage_sfu_socket_packets_dropped_total"
# Between the workers of a room spread over several (servers that can), by direction:
# what the publisher's worker sent and what the viewers' workers received.
PIPED = "stage_sfu_pipe_rtp_packets_total"
PIPED_OUT = PIPED + ":out"
PIPED_IN = PIPED + ":in"
# Where a server's own stalls show (summed over workers): event-loop lag probes (one per
# worker every 0.25 s) and how many were 5 ms or more late; cycle-collector pauses.
LAG = "stage_sfu_event_loop_lag_seconds"
LAG_PROBES = LAG + "_count"
LAG_WITHIN_5MS = LAG + ":le_0.005"
GC_SECONDS = "stage_sfu_gc_pause_seconds_sum"
GC_FULL = "stage_sfu_gc_pause_seconds_count:2"
# A gauge: active consumers of simulcast producers by the encoding they forward, as
# "<name>:<layer>" (0 = lowest).
SIMULCAST_CONSUMERS = "stage_sfu_simulcast_consumers"
_TIMEOUT = aiohttp.ClientTimeout(total=10)


def egress_counters(text: str) -> dict[str, float]:
    """Sums of the egress counters in a /metrics text, by sample name."""
    totals = {SENT: 0.0, SOCKET_DROPPED: 0.0, RECEIVED: 0.0, DROPPED: 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
            elif sample.name == PIPED:
                key = f"{PIPED}:{sample.labels.get('direction')}"
                totals[key] = totals.get(key, 0.0) + sample.value
            elif sample.name in (LAG_PROBES, GC_SECONDS):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            elif sample.name == LAG + "_bucket" and sample.labels.get("le") == "0.005":
                totals[LAG_WITHIN_5MS] = totals.get(LAG_WITHIN_5MS, 0.0) + sample.value
            elif (
                sample.name == "stage_sfu_gc_pause_seconds_count"
                and sample.labels.get("generation") == "2"
            ):
                totals[GC_FULL] = totals.get(GC_FULL, 0.0) + sample.value
            elif sample.name == SIMULCAST_CONSUMERS:
                key = f"{SIMULCAST_CONSUMERS}:{sample.labels.get('layer')}"
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def totals(text: str, names: Iterable[str]) -> dict[str, float]:
    """Sample `names` of a /metrics text, each summed over its labels (kinds, statuses,
    the front's `worker` label); a name the text does not hold is left out."""
    wanted = set(names)
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """Sample `name` of a /metrics text summed per value of one `label`."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get(label, "")
                out[key] = out.get(key, 0.0) + sample.value
    return out


async def scrape_text(port: int) -> str | None:
    """The /metrics text now, or None if the server did not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            if response.status != 200:
                return None
            return await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def scrape(port: int) -> dict[str, float] | None:
    """The counters now, or None if the server did not answer."""
    text = await scrape_text(port)
    return None if text is None else egress_counters(text)


def egress_between(first: dict[str, float] | None, last: dict[str, float] | None) -> int | None:
    """RTP packets the server handed to the kernel for viewers between two scrapes."""
    if first is None or last is None:
        return None
    sent = last[SENT] - first[SENT]
    dropped = last[SOCKET_DROPPED] - first[SOCKET_DROPPED]
    return round(sent - dropped)


def ingress_between(first: dict[str, float] | None, last: dict[str, float] | None) -> int | None:
    """RTP packets the server accepted from publishers between two scrapes."""
    return _between(RECEIVED, first, last)


def dropped_between(first: dict[str, float] | None, last: dict[str, float] | None) -> int | None:
    """RTP copies for viewers the server dropped (socket full, send error, not connected)."""
    return _between(DROPPED, first, last)


def pipe_loss_between(
    first: dict[str, float] | None, last: dict[str, float] | None
) -> tuple[int, int] | None:
    """(sent, lost) on the pipes between workers; None when the server has no pipes.

    A worker that cannot keep up overflows its pipe socket: that loss is nowhere else."""
    sent = _between(PIPED_OUT, first, last)
    received = _between(PIPED_IN, first, last)
    if sent is None or received is None:
        return None
    return sent, max(0, sent - received)


def stalls_between(
    first: dict[str, float] | None, last: dict[str, float] | None
) -> dict[str, float | int | None]:
    """The server's own stalls in the window: % of loop-lag probes ≥ 5 ms late, total
    cycle-collector pause time and full collections (None when not exported)."""
    probes = _between(LAG_PROBES, first, last)
    within = _between(LAG_WITHIN_5MS, first, last)
    gc_seconds = (
        last[GC_SECONDS] - first[GC_SECONDS]
        if first and last and GC_SECONDS in first and GC_SECONDS in last
        else None
    )
    return {
        "server_loop_lag_probes": probes,
        "server_loop_lag_over_5ms_pct": round((probes - within) * 100 / probes, 2)
        if probes and within is not None
        else None,
        "server_gc_pause_ms": round(gc_seconds * 1000, 1) if gc_seconds is not None else None,
        "server_gc_full_collections": _between(GC_FULL, first, last),
    }


def simulcast_consumers(counters: dict[str, float] | None) -> list[int] | None:
    """Active consumers of simulcast producers on each encoding (lowest first) at one
    scrape; None when the server exports no such gauge."""
    if counters is None:
        return None
    prefix = SIMULCAST_CONSUMERS + ":"
    layers = {int(k[len(prefix) :]): v for k, v in counters.items() if k.startswith(prefix)}
    if not layers:
        return None
    return [round(layers.get(layer, 0.0)) for layer in range(max(layers) + 1)]


def _between(
    name: str, first: dict[str, float] | None, last: dict[str, float] | None
) -> int | None:
    if first is None or last is None or name not in first or name not in last:
        return None
    return round(last[name] - first[name])
