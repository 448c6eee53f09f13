"""Results: the JSON file, the PNG plots and the table printed at the end."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REQUIRED_FIELDS = (
    "egress_packets",
    "sfu_cpu_seconds",
    "cpu_us_per_egress_packet",
    "kernel_send_us_per_packet",
    "loss_pct",
    "latency_p50_ms",
    "latency_p99_ms",
    "join_p50_ms",
    "join_p95_ms",
    "upstream_pli_per_s",
    "rss_mb",
)
SAME_LOSS_POINTS = 1.0  # loss within one percentage point (or both under 1 %) counts as "same"
SAME_FPS_SHARE = 0.9  # ... and the relay delivering at least 90 % of the SFU's frame rate


def compare(sfu: dict[str, Any], relay: dict[str, Any]) -> dict[str, Any]:
    """The SFU against the naive relay on the same scenario."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    loss_a, loss_b = sfu.get("loss_pct"), relay.get("loss_pct")
    same = (
        loss_a is not None
        and loss_b is not None
        and (abs(loss_a - loss_b) <= SAME_LOSS_POINTS or max(loss_a, loss_b) < 1.0)
    )
    # A relay short of CPU skips whole frames before encoding: no sequence gaps, fewer frames.
    fps_a, fps_b = sfu.get("video_fps"), relay.get("video_fps")
    if fps_a and fps_b and fps_b < SAME_FPS_SHARE * fps_a:
        same = False
    return {
        "scenario": sfu["scenario"],
        "target": sfu["target"],
        "viewers": {"sfu": sfu["params"]["viewers"], "relay": relay["params"]["viewers"]},
        "loss_pct": {"sfu": loss_a, "relay": loss_b},
        "video_fps": {"sfu": fps_a, "relay": fps_b},
        "same_loss": same,
        "viewers_per_cpu_second": {
            "sfu": sfu.get("viewers_per_cpu_second"),
            "relay": relay.get("viewers_per_cpu_second"),
            "ratio": ratio(sfu.get("viewers_per_cpu_second"), relay.get("viewers_per_cpu_second")),
        },
        "cpu_us_per_egress_packet": {
            "sfu": sfu.get("cpu_us_per_egress_packet"),
            "relay": relay.get("cpu_us_per_egress_packet"),
            # how many times cheaper each forwarded packet is on the SFU
            "ratio": ratio(
                relay.get("cpu_us_per_egress_packet"), sfu.get("cpu_us_per_egress_packet")
            ),
        },
    }


def pair_with_relay(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each SFU run against the relay run that follows it (the same sweep point)."""
    comparisons: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for run in runs:
        if run["target"] != "relay":
            pending.append(run)
            continue
        comparisons.extend(compare(sfu, run) for sfu in pending)
        pending = []
    return comparisons


def _point(run: dict[str, Any], *apart: str) -> str:
    """What makes runs the same point apart from the worker count (and `apart`)."""
    ignored = {"workers", *apart}
    params = {k: v for k, v in run["params"].items() if k not in ignored}
    return json.dumps([run["target"], params], sort_keys=True, default=str)


def compare_workers(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of one point with different worker counts, against the one with 1 worker (or
    the fewest): sets each run's `egress_ratio` and returns one comparison per point."""
    points: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run.get("workers") is not None:
            points.setdefault(_point(run), []).append(run)
    comparisons = []
    for group in points.values():
        if len({r["workers"] for r in group}) < 2:
            continue
        base = min(group, key=lambda r: r["workers"])
        for run in group:
            run["egress_ratio"] = _ratio(run.get("egress_pps"), base.get("egress_pps"))
        comparisons.append(
            {
                "scenario": base["scenario"],
                "target": base["target"],
                "viewers": base["params"]["viewers"],
                "rooms": base.get("rooms", 1),
                "thin_viewers": base.get("thin_viewers", 0),
                "base_workers": base["workers"],
                "runs": [
                    {
                        "workers": r["workers"],
                        "egress_pps": r.get("egress_pps"),
                        "egress_ratio": r["egress_ratio"],
                        "sfu_cpu_util": r.get("sfu_cpu_util"),
                        "worker_cpu_util": worker_utils(r),
                        "loss_pct": r.get("loss_pct"),
                        "server_ingress_loss_pct": r.get("server_ingress_loss_pct"),
                        "latency_p50_ms": r.get("latency_p50_ms"),
                        "server_kept_up": r.get("server_kept_up"),
                        "viewers_receiving": r.get("viewers_receiving"),
                        "machine_busy_pct": r.get("machine_busy_pct"),
                    }
                    for r in sorted(group, key=lambda r: r["workers"])
                ],
            }
        )
    return comparisons


def compare_simulcast(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each simulcast run against the one-encoding run of the same point (target,
    viewers, workers, everything else): CPU per forwarded packet and its ratio."""
    singles = {_point(run, "simulcast"): run for run in runs if not run["params"].get("simulcast")}
    comparisons = []
    for run in runs:
        single = singles.get(_point(run, "simulcast")) if run["params"].get("simulcast") else None
        if single is None:
            continue

        def side(r: dict[str, Any]) -> dict[str, Any]:
            window = r.get("window_seconds")
            ingress = r.get("server_ingress_packets")
            return {
                "cpu_us_per_egress_packet": r.get("cpu_us_per_egress_packet"),
                "sfu_cpu_util": r.get("sfu_cpu_util"),
                "egress_pps": r.get("egress_pps"),
                "ingress_pps": round(ingress / window, 1) if ingress and window else None,
                "loss_pct": r.get("loss_pct"),
                "latency_p50_ms": r.get("latency_p50_ms"),
                "latency_p99_ms": r.get("latency_p99_ms"),
                "video_fps": r.get("video_fps"),
                "simulcast_consumers": r.get("simulcast_consumers"),
            }

        comparisons.append(
            {
                "scenario": run["scenario"],
                "target": run["target"],
                "viewers": run["params"]["viewers"],
                "workers": run.get("workers"),
                "single": side(single),
                "simulcast": side(run),
                # how many times the simulcast path costs per forwarded packet
                "cpu_us_per_egress_packet_ratio": _ratio(
                    run.get("cpu_us_per_egress_packet"), single.get("cpu_us_per_egress_packet")
                ),
                # ... and in all, for the same viewers (who get fewer packets on small tiles)
                "sfu_cpu_util_ratio": _ratio(run.get("sfu_cpu_util"), single.get("sfu_cpu_util")),
            }
        )
    return comparisons


def worker_capacity(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per sweep (runs alike but for viewers and workers) with several worker counts, for
    each count and against the fewest:

    * `sustained`: the highest egress of a run the server kept up with (`server_kept_up`),
      a lower bound of its capacity, as close as the sweep's step below the knee;
    * `peak`: the highest egress of any run; from an overloaded run (`kept_up` false) it
      is the ceiling if the server saturated without collapsing, and means nothing if it
      collapsed (its egress then falls: publishers dropped, ICE consent failed).
    """
    sweeps: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run.get("workers") is not None:
            sweeps.setdefault(_point(run, "viewers", "viewer_processes"), []).append(run)
    out = []
    for group in sweeps.values():
        counts = sorted({r["workers"] for r in group})
        if len(counts) < 2:
            continue
        chosen: dict[str, dict[int, dict[str, Any] | None]] = {"sustained": {}, "peak": {}}
        for count in counts:
            mine = [r for r in group if r["workers"] == count]
            for kind, eligible in (
                ("sustained", [r for r in mine if r.get("server_kept_up")]),
                ("peak", mine),
            ):
                chosen[kind][count] = max(
                    eligible, key=lambda r: r.get("egress_pps") or 0, default=None
                )
        out.append(
            {
                "target": group[0]["target"],
                "base_workers": counts[0],
                "by_workers": {
                    str(count): {
                        "highest_viewers_run": max(
                            r["params"]["viewers"] for r in group if r["workers"] == count
                        ),
                        **{
                            kind: _capacity(best[count], best[counts[0]])
                            for kind, best in chosen.items()
                        },
                    }
                    for count in counts
                },
            }
        )
    return out


def _capacity(run: dict[str, Any] | None, base: dict[str, Any] | None) -> dict[str, Any]:
    pps = run.get("egress_pps") if run else None
    return {
        "egress_pps": pps,
        "ratio": _ratio(pps, base.get("egress_pps") if base else None),
        "viewers": run["params"]["viewers"] if run else None,
        "kept_up": run.get("server_kept_up") if run else None,
        "worker_cpu_util": worker_utils(run) if run else None,
    }


def worker_utils(run: dict[str, Any]) -> list[float]:
    """CPU (1.0 = one core) of each media worker, or of the single server process."""
    processes = run.get("server_processes") or []
    workers = [p for p in processes if p["role"].startswith("worker")]
    chosen = workers or [p for p in processes if p["role"] == "server"]
    return [p["cpu_util"] for p in sorted(chosen, key=lambda p: p["role"])]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _spaced(series: list[dict[str, Any]], gap: float = 0.5) -> list[dict[str, Any]]:
    """Samples at least `gap` seconds apart, so rates between them are not noise."""
    kept: list[dict[str, Any]] = []
    for sample in series:
        if not kept or sample["t"] - kept[-1]["t"] >= gap:
            kept.append(sample)
    return kept


def _label(run: dict[str, Any]) -> str:
    p = run["params"]
    label = f"{run['target']} {p['publishers']}p x {p['viewers']}v"
    if run.get("rooms", 1) != 1:
        label += f" {run['rooms']} rooms"
    if run.get("workers") is not None:
        label += f" {run['workers']}w"
    if run.get("thin_viewers"):
        label += f" thin/{run['thin_viewers']}"
    return label


def plot(out_dir: Path, runs: Sequence[dict[str, Any]]) -> list[Path]:
    """runs.png (time series, latency and join CDFs) and, for sweeps, scaling.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (rate_ax, cpu_ax), (lat_ax, join_ax) = axes
    for run in runs:
        series = _spaced(run["timeseries"])
        label = _label(run)
        times = [b["t"] for b in series[1:]]
        rates = [
            (b["received"] - a["received"]) / (b["t"] - a["t"])
            for a, b in itertools.pairwise(series)
        ]
        cpu = [
            (b["server_cpu"] - a["server_cpu"]) * 100 / (b["t"] - a["t"])
            for a, b in itertools.pairwise(series)
        ]
        (line,) = rate_ax.plot(times, rates, label=label)
        cpu_ax.plot(times, cpu, label=label, color=line.get_color())
        window = [s["t"] for s in run["timeseries"] if s["in_window"]]
        if window:
            for ax in (rate_ax, cpu_ax):
                ax.axvspan(window[0], window[-1], color=line.get_color(), alpha=0.08)
        for ax, values, scale in (
            (lat_ax, run.get("latency_us_sample") or [], 1e-3),
            (join_ax, run.get("join_ms_all") or [], 1.0),
        ):
            if values:
                ordered = sorted(v * scale for v in values)
                fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
                ax.step(
                    ordered,
                    fractions,
                    where="post",
                    label=label,
                    color=line.get_color(),
                    marker="o" if len(ordered) < 20 else None,
                )
    thin = any(run.get("thin_viewers") for run in runs)
    rate_ax.set(
        title="packets/s received by bots"
        + (" (thin viewers: sampled)" if thin else "")
        + "; shaded: window",
        xlabel="s",
    )
    cpu_ax.set(title="server CPU, % of one core", xlabel="s")
    lat_ax.set(
        title="forwarding latency CDF (publisher send -> viewer receive)", xlabel="ms", xscale="log"
    )
    lat_ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    lat_ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    lat_ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    join_ax.set(title="join time CDF (join sent -> first media packet)", xlabel="ms")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "runs.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    by_target: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_target.setdefault(run["target"], []).append(run)
    if any(len({r["params"]["viewers"] for r in rs}) > 1 for rs in by_target.values()) and all(
        len({r.get("workers") for r in rs}) == 1 for rs in by_target.values()
    ):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for target, rs in by_target.items():
            rs = sorted(rs, key=lambda r: r["params"]["viewers"])
            xs = [r["params"]["viewers"] for r in rs]
            for ax, key in zip(
                axes, ("cpu_us_per_egress_packet", "loss_pct", "latency_p99_ms"), strict=True
            ):
                ax.plot(xs, [r.get(key) for r in rs], marker="o", label=target)
                ax.set(title=key, xlabel="viewers")
                ax.grid(alpha=0.3)
                ax.legend()
        fig.tight_layout()
        path = out_dir / "scaling.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


_COLUMNS = (
    ("target", "target", "{}"),
    ("rooms", "rooms", "{}"),
    ("workers", "workers", "{}"),
    ("thin", "thin_viewers", "1/{}"),
    ("pubs", "params.publishers", "{}"),
    ("simulcast", "simulcast", "{}"),
    ("viewers", "viewers_receiving", "{}"),
    ("egress pkt/s", "egress_pps", "{:.0f}"),
    ("egress x", "egress_ratio", "{:.2f}"),
    ("cpu %", "sfu_cpu_util", "{:.0%}"),
    ("worker cpu %", "worker_cpu", "{}"),
    ("us/pkt", "cpu_us_per_egress_packet", "{:.2f}"),
    ("kernel us", "kernel_send_us_per_packet", "{:.2f}"),
    ("loss %", "loss_pct", "{:.3f}"),
    ("fps", "video_fps", "{:.1f}"),
    ("lat p50", "latency_p50_ms", "{:.2f}"),
    ("lat p99", "latency_p99_ms", "{:.2f}"),
    ("join p50", "join_p50_ms", "{:.0f}"),
    ("join p95", "join_p95_ms", "{:.0f}"),
    ("PLI/s", "upstream_pli_per_s", "{:.2f}"),
    ("RSS MB", "rss_mb", "{:.0f}"),
    ("busy %", "machine_busy_pct", "{:.0f}"),
    ("kept up", "kept_up", "{}"),
)


# Shown only when some run differs from the default: 1 room, no ratio, full viewers.
_OPTIONAL = {
    "rooms": 1,
    "egress_ratio": None,
    "thin_viewers": 0,
    "worker_cpu": None,
    "kept_up": None,
    "simulcast": False,
}


def _get(run: dict[str, Any], dotted: str) -> Any:
    if dotted == "kept_up":
        kept_up = run.get("server_kept_up")
        return None if kept_up is None else "yes" if kept_up else "NO"
    if dotted == "worker_cpu":
        utils = worker_utils(run)
        return "/".join(f"{u:.0%}".rstrip("%") for u in utils) if len(utils) > 1 else None
    value: Any = run
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def table(runs: Sequence[dict[str, Any]]) -> str:
    columns = [
        (title, key, fmt)
        for title, key, fmt in _COLUMNS
        if key not in _OPTIONAL or any(_get(run, key) != _OPTIONAL[key] for run in runs)
    ]
    if all(run.get("workers") is None for run in runs):
        columns = [c for c in columns if c[1] != "workers"]
    rows = [[title for title, _, _ in columns]]
    for run in runs:
        row = []
        for _, key, fmt in columns:
            value = _get(run, key)
            row.append("-" if value is None else fmt.format(value))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
