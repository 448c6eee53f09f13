// Minimal room page: join as viewer or on stage, render one tile per stage member.
import { StageClient } from "./stage-client.js";

const params = new URLSearchParams(location.search);
const $ = (sel) => document.querySelector(sel);
const state = (window.stageState = { status: "idle", error: null, participantId: null });

async function join(token, entry) {
  state.status = "joining";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const client = (window.stageClient = new StageClient(`${scheme}://${location.host}/ws`));
  client.addEventListener("participants", () => render(client));
  client.addEventListener("closed", () => (state.status = "closed"));
  client.addEventListener("error", (e) => (state.error = String(e.detail)));
  await client.connect();
  const joined = await client.join(token, entry);
  state.participantId = joined.participant_id;
  if (entry === "stage") {
    const local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    client.streams.set(joined.participant_id, local);
    await client.publish(local);
  }
  state.status = "joined";
  $("#join").hidden = true;
  $("#room").hidden = false;
  render(client);
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
}

function render(client) {
  const stage = $("#stage");
  const members = [...client.participants.values()].filter((p) => p.on_stage);
  for (const tile of stage.querySelectorAll(".tile")) {
    if (!members.some((p) => p.participant_id === tile.dataset.participant)) tile.remove();
  }
  for (const p of members) {
    let tile = stage.querySelector(`[data-participant="${p.participant_id}"]`);
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.dataset.participant = p.participant_id;
      tile.innerHTML = `<video autoplay playsinline></video><span class="initials"></span><figcaption></figcaption>`;
      stage.append(tile);
    }
    const video = tile.querySelector("video");
    const stream = client.streams.get(p.participant_id);
    if (stream && video.srcObject !== stream) {
      video.srcObject = stream;
      video.muted = p.participant_id === client.participantId;
    }
    tile.querySelector(".initials").textContent = initials(p.name);
    tile.querySelector("figcaption").textContent = p.name + (p.speaking ? " (speaking)" : "");
    tile.classList.toggle("speaking", Boolean(p.speaking));
  }
  stage.dataset.count = String(members.length);
  $("#viewers").textContent = `${[...client.participants.values()].filter((p) => !p.on_stage).length} watching`;
}

// For tests and diagnostics: decoded frames and received audio of the subscribe connection.
window.stageStats = async () => {
  const client = window.stageClient;
  const out = { framesDecoded: 0, audioSamples: 0, audioPackets: 0, videoPackets: 0, width: 0 };
  if (!client || !client.subscriber) return out;
  const report = await client.subscriber.getStats();
  report.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") {
      out.framesDecoded += s.framesDecoded || 0;
      out.videoPackets += s.packetsReceived || 0;
      out.width = Math.max(out.width, s.frameWidth || 0);
    } else {
      out.audioSamples += s.totalSamplesReceived || 0;
      out.audioPackets += s.packetsReceived || 0;
    }
  });
  return out;
};

$("#join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const entry = e.submitter && e.submitter.value === "stage" ? "stage" : "viewer";
  join($("#token").value.trim(), entry).catch((err) => {
    state.status = "error";
    state.error = err.message;
    $("#join-error").textContent = err.message;
  });
});

if (params.get("token")) $("#token").value = params.get("token");
if (params.get("autojoin")) join(params.get("token"), params.get("entry") || "viewer").catch((err) => {
  state.status = "error";
  state.error = err.message;
});
