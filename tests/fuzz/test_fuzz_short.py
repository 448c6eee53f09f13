"""A short fuzzing run against a real server (python -m tools.fuzz does longer ones):
about 20 000 WebSocket frames and UDP datagrams, with one worker and with two."""

from __future__ import annotations

import pytest

from tools.fuzz import report
from tools.fuzz.run import RunConfig, run

INPUTS = 20_000


@pytest.mark.integration
@pytest.mark.timeout(150)
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_short_fuzzing_run_finds_no_crash_no_internal_error_and_leaves_the_server_healthy(
    workers: int,
) -> None:
    result = await run(RunConfig(workers=workers, inputs=INPUTS, seconds=60.0, seed=workers))
    document = report.as_dict(result, f"tests/fuzz (workers={workers})")
    summary = report.table(document)

    assert result.findings.total_sent >= INPUTS * 0.95, summary
    assert result.crashes == [], summary
    assert result.internal_errors == 0, summary
    assert result.anomalies == 0, summary
    assert result.health is not None and result.health.passed, summary
