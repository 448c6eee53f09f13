"""Browsers that may only use a TURN relay (`?relay=1`, iceTransportPolicy "relay"),
through a real coturn on loopback, over UDP and over TCP: the stage reaches the viewer
only through the relay; and a relay that refuses the credentials is said so on the page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.coturn import Coturn
from tests.e2e.conftest import Join, Participant, now, poll

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
MORE_FRAMES = 15
RELAY = {"relay": "1", "camera_height": "360"}

# The candidate pair each connection uses now: its local candidate's type and, for a relay
# candidate, how the browser reaches the TURN server (udp, tcp or tls).
SELECTED_PAIRS = """() => {
  const client = window.stageClient;
  const read = async (pc) => {
    if (!pc) return null;
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
    if (!transport) return null;
    const pair = stats.find((s) => s.id === transport.selectedCandidatePairId);
    const local = stats.find((s) => s.id === pair.localCandidateId);
    const { candidateType: type, relayProtocol, url } = local;
    return { type, relayProtocol: relayProtocol || null, url: url || null };
  };
  return Promise.all([read(client.publisher), read(client.subscriber)])
    .then(([publish, subscribe]) => ({ publish, subscribe }));
}"""


@pytest.fixture(params=["udp", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    """How the browsers reach coturn: the `?transport=` of the one TURN URL configured."""
    value: str = request.param
    return value


@pytest.fixture
def turn_secret(coturn: Coturn) -> str:
    """The secret the SFU mints credentials with (coturn's own, unless a test says not)."""
    return coturn.secret


@pytest.fixture
def server_overrides(coturn: Coturn, transport: str, turn_secret: str) -> dict[str, object]:
    return {"turn.urls": [coturn.url(transport)], "turn.secret": turn_secret}


async def selected_pairs(participant: Participant) -> dict[str, Any]:
    pairs: dict[str, Any] = await participant.page.evaluate(SELECTED_PAIRS)
    return pairs


@pytest.mark.timeout(120)
async def test_relay_only_browsers_send_and_receive_the_stage_through_coturn(
    join: Join, coturn: Coturn, transport: str
) -> None:
    host = await join("hana", "stage", role=Role.HOST, query=RELAY)
    viewer = await join("vera", "viewer", query=RELAY)

    later = await viewer.wait_for_media_flowing(
        frames=MORE_FRAMES, timeout=MEDIA_TIMEOUT, how=" through the relay"
    )
    assert later["width"] > 0 and later["audioPackets"] > 0, later

    relayed = {"type": "relay", "relayProtocol": transport, "url": coturn.url(transport)}
    host_pairs = await selected_pairs(host)
    assert host_pairs["publish"] == relayed, host_pairs
    viewer_pairs = await selected_pairs(viewer)
    assert viewer_pairs["subscribe"] == relayed, viewer_pairs
    # coturn granted each of them an allocation with the credentials the SFU minted.
    allocated = await poll(
        lambda: now(coturn.allocations),
        lambda names: {name.split(":", 1)[1] for name in names} >= {"hana", "vera"},
        timeout=10.0,
        what="coturn logging both allocations",
    )
    assert all(name.split(":", 1)[0].isdigit() for name in allocated), allocated


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["udp"])
@pytest.mark.parametrize("turn_secret", ["not-the-secret-coturn-was-given"])
async def test_a_relay_that_refuses_the_credentials_is_named_on_the_page(
    join: Join, coturn: Coturn
) -> None:
    await join("hana", "stage", role=Role.HOST, query={"camera_height": "360"})
    viewer = await join("vera", "viewer", query=RELAY)

    await viewer.wait_for(
        "() => window.stageState.mediaError", timeout=MEDIA_TIMEOUT, what="a media error"
    )
    alert = viewer.page.locator('#toasts [data-kind="media-failed"]')
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text(
        "The relay server (TURN) refused this connection's credentials"
    )
    assert (await viewer.stats())["framesDecoded"] == 0
    refused = await poll(
        lambda: now(coturn.refusals),
        lambda names: any(name.endswith(":vera") for name in names),
        timeout=10.0,
        what="coturn logging the refused credentials",
    )
    assert refused
    await viewer.screenshot("turn-refused.png")
