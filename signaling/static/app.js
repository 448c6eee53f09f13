// The web client: the join screen, then the room (room.js), then the end screen.
//
// Joining the stage from the join screen joins the room as a viewer first: the room's
// policy is not known before that (`joined.entries` and `policy` tell it). Only then, and
// only if the stage may be joined directly, comes the device check and `join_stage`;
// otherwise the person is in the room anyway, told why before any device is asked for,
// with what does apply ("Ask to join stage", or raising a hand where the stage is by
// invitation), instead of a failed join.
//
// For tests: window.stageState {status, participantId, error, mediaError, ...}, window.stageStats().
import { StageClient } from "./stage-client.js";
import { LocalMedia } from "./devices.js";
import { openDevices } from "./dialogs.js";
import { RoomController } from "./room.js";
import { maySelfJoin, mayRequest } from "./rules.js";
import { run } from "./moderation.js";
import { toast } from "./ui.js";

const JOIN_KEY = "stage-sfu.join";
const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const state = (window.stageState = { status: "idle", error: null, participantId: null, stage: null, publishing: [] });
// ?camera_height=360 captures the camera at 640x360 instead of 1280x720 (tests on small machines).
const media = new LocalMedia({ cameraHeight: Number(params.get("camera_height")) || null });
let controller = null;

// -- the join screen ---------------------------------------------------------------------------
function loadJoinPrefs() {
  try {
    return JSON.parse(localStorage.getItem(JOIN_KEY) || "{}");
  } catch {
    return {};
  }
}

function saveJoinPrefs() {
  const prefs = { name: $("#name").value.trim(), room: $("#room-input").value.trim(), role: $("#role").value, mode: joinMode() };
  try {
    localStorage.setItem(JOIN_KEY, JSON.stringify(prefs));
  } catch {
    // not essential
  }
}

const joinMode = () => (document.querySelector('input[name="mode"]:checked') || {}).value || "dev";

/** Only watching: the stage is not on offer, so joining as a viewer is the one way in. */
function showEntries() {
  const watchOnly = $("#viewer-only").checked;
  $('#join-form [data-action="join-stage"]').hidden = watchOnly;
  $('#join-form [data-action="join-viewer"]').className = watchOnly ? "primary" : "secondary";
}

function showMode() {
  const dev = joinMode() === "dev";
  $("#dev-fields").hidden = !dev;
  $("#token-fields").hidden = dev;
}

function initJoinScreen() {
  const saved = loadJoinPrefs();
  $("#name").value = params.get("name") || saved.name || "";
  $("#room-input").value = params.get("room") || saved.room || "demo";
  $("#role").value = params.get("role") || saved.role || "participant";
  if (params.get("token")) {
    $("#token").value = params.get("token");
    $("#mode-token").checked = true;
  } else if (saved.mode === "token") {
    $("#mode-token").checked = true;
  }
  // Phones enter as viewers (they may still answer an invitation... unless watch-only).
  $("#viewer-only").checked = params.has("viewer_only") ? params.get("viewer_only") === "1" : matchMedia("(max-width: 600px)").matches;
  showMode();
  showEntries();
  $("#viewer-only").addEventListener("change", showEntries);
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", showMode);
  for (const field of ["#name", "#room-input", "#role", "#mode-dev", "#mode-token"]) $(field).addEventListener("change", saveJoinPrefs);
  $("#join-devices").addEventListener("click", () => openDevices(media, { mode: "settings" }));
  $("#join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const stage = e.submitter && e.submitter.value === "stage" && !$("#viewer-only").checked;
    start(stage ? "stage" : "viewer", { check: true });
  });
  $("#rejoin").addEventListener("click", () => location.assign(location.pathname));
}

function setJoinBusy(busy) {
  for (const button of document.querySelectorAll("#join-form button")) button.disabled = busy;
}

function joinError(message) {
  state.status = "error";
  state.error = message;
  $("#join-error").textContent = message;
  setJoinBusy(false);
}

/** A token: the one pasted, or one the server mints in development mode. */
async function obtainToken() {
  if (joinMode() === "token") {
    const token = $("#token").value.trim();
    if (!token) throw new Error("Paste a join token first.");
    return token;
  }
  const name = $("#name").value.trim();
  const room = $("#room-input").value.trim();
  if (!name) throw Object.assign(new Error("Enter your name."), { field: "#name" });
  if (!room) throw Object.assign(new Error("Enter a room name."), { field: "#room-input" });
  const response = await fetch("/api/dev-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ room, name, role: $("#role").value }),
  });
  if (response.status === 404) {
    $("#mode-token").checked = true;
    showMode();
    throw new Error("This server does not mint development tokens. Paste a join token instead.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `The server answered ${response.status}.`);
  return body.token;
}

async function start(entry, { check = false } = {}) {
  $("#join-error").textContent = "";
  setJoinBusy(true);
  state.status = "joining";
  state.error = null;
  let token;
  try {
    token = await obtainToken();
  } catch (error) {
    joinError(error.message);
    if (error.field) $(error.field).focus();
    return;
  }
  saveJoinPrefs();
  await join(token, entry, { viewerOnly: $("#viewer-only").checked, check });
}

const ERRORS = {
  token_invalid: "This join token is not valid.",
  token_expired: "This join token has expired.",
  token_wrong_room: "This join token is for another room.",
  banned: "You were removed from this room and cannot come back.",
  shutting_down: "The server is shutting down.",
};

/** Join as a viewer, then take the stage if asked (`check`: after the device check). */
async function join(token, entry, { viewerOnly = false, check = false } = {}) {
  state.status = "joining";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // ?simulcast=0 publishes the camera as one encoding (to diagnose a simulcast problem).
  const simulcast = params.get("simulcast") !== "0";
  // ?relay=1 sends and receives media only through the server's TURN relays (as behind a
  // firewall that lets nothing else out), to check they work.
  const relay = params.get("relay") === "1";
  const client = (window.stageClient = new StageClient(`${scheme}://${location.host}/ws`, { simulcast, relay }));
  try {
    await client.connect();
    await client.join(token, { entry: "viewer", viewerOnly });
  } catch (error) {
    client.close();
    joinError(ERRORS[error.code] || error.message);
    return;
  }
  state.participantId = client.participantId;
  $("#join").hidden = true;
  $("#room").hidden = false;
  document.title = `${client.room} · stage-sfu`;
  controller = window.stageRoom = new RoomController({ client, media, onEnded: ended });
  client.addEventListener("you", () => {
    state.stage = client.you ? client.you.status : null;
    state.role = client.you ? client.you.role : null;
  });
  state.stage = client.you.status;
  state.role = client.you.role;
  if (entry === "stage" && !check) await enterStage(client); // a link to the stage: no check
  state.status = "joined";
  if (entry === "stage" && check) await enterStage(client, { check });
}

/** After joining as a viewer: go on stage if the room lets us, else say what applies. */
async function enterStage(client, { check = false } = {}) {
  const you = client.you;
  const policy = client.policy || {};
  if (client.entries.includes("stage") || maySelfJoin(you, policy)) {
    await controller.joinStage({ skipCheck: !check });
  } else if (you.viewer_only) {
    toast("You joined to watch only, so the stage is not available.", { kind: "stage-not-allowed" });
  } else if (mayRequest(you, client.policy)) {
    toast("Joining the stage is by request in this room: you joined as a viewer.", {
      kind: "stage-not-allowed",
      timeout: 12000,
      action: { label: "Ask to join stage", run: () => controller.stageButton() },
    });
  } else {
    // invitation only (or a panel room): a raised hand is how to ask for an invitation
    const how = policy.mode === "panel" ? "In this panel room speakers are invited" : "In this room the stage is by invitation";
    toast(`${how}: you joined as a viewer. Raise your hand to ask a moderator to invite you.`, {
      kind: "stage-not-allowed",
      timeout: 12000,
      action: { label: "Raise hand", run: () => run(client, "raise_hand") },
    });
  }
}

// -- the end ----------------------------------------------------------------------------------
const ENDINGS = {
  left: ["You left the room", "Thanks for joining."],
  kicked: ["You were removed from the room", "A host or moderator removed you from this room."],
  shutting_down: ["The room closed", "The server is shutting down."],
  transport_failed: ["The media connection failed", "Check your network and join again."],
  timed_out: ["You were disconnected", "The connection timed out."],
  connection_lost: ["The connection was lost", "Check your network and join again."],
};

/** Title and text of the end screen for a room that ended for everyone. */
function roomEnded({ by, by_name: byName }) {
  if (by && by === state.participantId) return ["You ended the room", "The room ended for everyone."];
  if (by) return ["The host ended the room", `${byName || "The host"} ended the room for everyone.`];
  return ["The room ended", "It had no host or moderator for a while, so it closed."];
}

function ended(bye) {
  const { reason } = bye;
  state.status = "ended";
  state.ended = reason;
  let [title, text] = reason === "room_ended" ? roomEnded(bye) : ENDINGS[reason] || ENDINGS.connection_lost;
  // The page may know better than "check your network": a relay that refused us, say.
  const problem = window.stageClient?.mediaProblem;
  if (reason === "transport_failed" && problem) text = problem;
  $("#ended-title").textContent = title;
  $("#ended-text").textContent = text;
  $("#room").hidden = true;
  $("#ended").hidden = false;
  document.querySelectorAll("dialog[open]").forEach((d) => d.close());
  // the end screen says it once; the room's notifications went with the room
  $("#toasts").replaceChildren();
  $("#rejoin").focus();
}

// -- for tests and diagnostics -------------------------------------------------------------------
/** Decoded video and received audio of the subscribe connection, in total and per publisher
 * (`byParticipant`: frames decoded, largest frame size, freezes, packets received and lost). */
window.stageStats = async () => {
  const client = window.stageClient;
  const out = { framesDecoded: 0, audioSamples: 0, audioPackets: 0, videoPackets: 0, width: 0, byParticipant: {} };
  if (!client || !client.subscriber) return out;
  const report = await client.subscriber.getStats();
  report.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    const section = client.midTracks.get(s.mid);
    const key = section ? section.participantId : "unknown";
    const per = (out.byParticipant[key] = out.byParticipant[key] || {
      framesDecoded: 0, width: 0, height: 0, freezeCount: 0, videoPackets: 0, videoPacketsLost: 0,
      audioSamples: 0, audioPackets: 0, audioPacketsLost: 0,
    });
    if (s.kind === "video") {
      out.framesDecoded += s.framesDecoded || 0;
      out.videoPackets += s.packetsReceived || 0;
      out.width = Math.max(out.width, s.frameWidth || 0);
      per.framesDecoded += s.framesDecoded || 0;
      per.width = Math.max(per.width, s.frameWidth || 0);
      per.height = Math.max(per.height, s.frameHeight || 0);
      per.freezeCount += s.freezeCount || 0;
      per.videoPackets += s.packetsReceived || 0;
      per.videoPacketsLost += s.packetsLost || 0;
    } else {
      out.audioSamples += s.totalSamplesReceived || 0;
      out.audioPackets += s.packetsReceived || 0;
      per.audioSamples += s.totalSamplesReceived || 0;
      per.audioPackets += s.packetsReceived || 0;
      per.audioPacketsLost += s.packetsLost || 0;
    }
  });
  return out;
};

/** The publish connection's video encodings: [{rid, width, height, bytesSent, framesEncoded, limitedBy}]. */
window.stagePublishStats = async () => {
  const client = window.stageClient;
  if (!client || !client.publisher) return [];
  const report = await client.publisher.getStats();
  const out = [];
  report.forEach((s) => {
    if (s.type !== "outbound-rtp" || s.kind !== "video") return;
    out.push({
      rid: s.rid || "",
      width: s.frameWidth || 0,
      height: s.frameHeight || 0,
      bytesSent: s.bytesSent || 0,
      framesEncoded: s.framesEncoded || 0,
      limitedBy: s.qualityLimitationReason || "none",
      scalabilityMode: s.scalabilityMode || "",
      mid: s.mid || "",
    });
  });
  return out.sort((a, b) => a.rid.localeCompare(b.rid));
};

initJoinScreen();
if (params.get("autojoin")) {
  const entry = params.get("entry") === "stage" ? "stage" : "viewer";
  if (params.get("token")) join(params.get("token"), entry, { viewerOnly: params.get("viewer_only") === "1" });
  else start(entry);
}
