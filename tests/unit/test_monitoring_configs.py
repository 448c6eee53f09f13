"""The Grafana dashboard, the Prometheus example and the operator docs match what a
live server actually exposes at /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from signaling.settings import Settings
from tests.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "configs" / "grafana-dashboard.json"
PROMETHEUS = ROOT / "configs" / "prometheus.yml"
OPERATING = ROOT / "docs" / "operating.md"
METRIC = re.compile(r"\bstage_sfu_[a-z0-9_]+")
# Served by the front process of several workers only, not by the one-process server here.
FRONT_ONLY = {
    "stage_sfu_worker_restarts_total",
    "stage_sfu_worker_hangs_total",
    "stage_sfu_worker_probes_total",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": (),
    "info": ("_info",),
}


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition", "query") and isinstance(value, str):
                yield value
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


async def exposed(server: RunningServer) -> dict[str, str]:
    """Every name a PromQL query may use -> its family's type, from a live scrape."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.http_url}/metrics") as response,
    ):
        text = await response.text()
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        names[family.name] = family.type
        for suffix in SUFFIXES.get(family.type, ()):
            names[family.name + suffix] = family.type
        for sample in family.samples:
            names[sample.name] = family.type
    return names


@pytest.fixture
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


async def test_every_metric_in_the_dashboard_is_exposed(
    server: RunningServer, dashboard: dict[str, Any]
) -> None:
    names = await exposed(server)
    referenced = {name for expr in exprs(dashboard) for name in METRIC.findall(expr)}
    assert len(referenced) >= 30
    missing = sorted(referenced - names.keys())
    assert missing == []


async def test_dashboard_rates_only_counters_and_histograms(
    server: RunningServer, dashboard: dict[str, Any]
) -> None:
    names = await exposed(server)
    for expr in exprs(dashboard):
        for name in re.findall(r"rate\((stage_sfu_[a-z0-9_]+)", expr):
            assert names[name] in ("counter", "histogram", "summary"), (name, expr)


def test_dashboard_panels_query_the_selected_data_source_and_servers(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])


def test_prometheus_example_scrapes_metrics_on_the_default_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"127.0.0.1:{Settings().server.port}"]
    assert _seconds(job["scrape_timeout"]) <= _seconds(config["global"]["scrape_interval"])


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


async def test_every_exposed_metric_is_documented_for_operators(server: RunningServer) -> None:
    names = await exposed(server)
    documented = set(METRIC.findall(OPERATING.read_text(encoding="utf-8"))) - FRONT_ONLY
    assert documented <= names.keys(), sorted(documented - names.keys())
    families = {n for n in names if n.startswith("stage_sfu_") and not n.endswith("_created")}
    undocumented = sorted(
        name
        for name in families
        if name not in documented
        and not any(name + suffix in documented for suffix in SUFFIXES[names[name]])
        and not any(name.removesuffix(suffix) in documented for suffix in SUFFIXES[names[name]])
    )
    assert undocumented == []
