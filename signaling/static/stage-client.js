// stage-sfu browser client: the WebSocket protocol (docs/protocol.md) and the two
// WebRTC connections it drives. No UI here: it keeps the room's state as the server
// tells it and announces changes as DOM events; app.js renders.
//
// Events (CustomEvent, payload in `detail`):
//   participants  the participant list, a speaking state or a track changed
//   you           your own participant entry changed ({before, after})
//   policy counts queues polls chat active_speaker
//   invited invitation_ended request_declined request_cancelled stage_left device_forced
//   host_left     the room has no host any more (its last host, or last moderator, left)
//   notice        an error the server sent outside any request
//   media_failed  a media connection cannot be made or failed ({connection, message}; once)
//   bye closed error
import { inFullView } from "./rules.js";

const CONNECTION = { bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };
const SOURCES = ["microphone", "camera", "screen", "screen_audio"];
const KIND = { microphone: "audio", camera: "video", screen: "video", screen_audio: "audio" };
// The camera goes out as several encodings, lowest first (the order the server expects),
// each half the size of the next, down to about 180 lines: three for a 720p capture,
// two for 360p, one below. The server forwards each viewer the one its tile and its link
// call for. Browsers fix a sender's encodings when it is created.
const LADDER = [
  { rid: "q", maxBitrate: 150_000 },
  { rid: "h", maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];
const SMALLEST_HEIGHT = 180;

/** The simulcast encodings for a camera track of `height` lines (null: just one). */
export function cameraEncodings(height) {
  let count = 1;
  while (count < LADDER.length && height / 2 ** count >= SMALLEST_HEIGHT) count += 1;
  if (count === 1) return null;
  return LADDER.slice(LADDER.length - count).map((layer, i) => ({
    ...layer,
    scaleResolutionDownBy: 2 ** (count - 1 - i),
  }));
}
// A shared screen is one encoding with VP8 temporal layers, so a viewer on a short link
// gets fewer frames of it, never a blurred one; text must stay sharp.
const SCREEN_ENCODINGS = [{ scalabilityMode: "L1T3", maxBitrate: 2_500_000 }];

// A join waits for media transports and a room; nothing the server does legitimately takes this long.
const REQUEST_TIMEOUT_MS = 20000;

export class StageClient extends EventTarget {
  /** `relay`: media only through the TURN servers the server names (iceTransportPolicy "relay"). */
  constructor(url, { requestTimeoutMs = REQUEST_TIMEOUT_MS, simulcast = true, relay = false } = {}) {
    super();
    this.url = url;
    this.requestTimeoutMs = requestTimeoutMs;
    this.simulcast = simulcast;
    this.relay = relay;
    this.iceServers = []; // joined.ice_servers: STUN, and TURN with this session's credentials
    this.iceErrors = []; // what the TURN servers answered when they refused us: {url, code, text}
    this.mediaProblem = null; // why media cannot flow, once we know (see media_failed)
    this.nextId = 1;
    this.pending = new Map();
    this.participantId = null;
    this.room = null;
    this.role = null;
    this.entries = ["viewer"];
    this.policy = null;
    this.counts = { viewers: 0, on_stage: 0, hands: 0, requests: 0 };
    this.queues = { hands: [], requests: [], seats: [] };
    this.participants = new Map(); // participant id -> participant (as the server describes it)
    this.polls = new Map(); // poll id -> poll
    this.activeSpeaker = null;
    this.invitation = null; // the pending `invited` event, if any
    this.closed = false;
    // Subscribe side: what the server forwards to us.
    this.subscriber = null;
    this.negotiation = Promise.resolve();
    this.midTracks = new Map(); // subscribe mid -> {participantId, trackId}
    this.remoteTracks = new Map(); // track id -> {track, participantId, mid}
    this.bundleTag = null; // the subscribe m-section that carries the one transport
    // Publish side: one connection, one transceiver per source.
    this.publisher = null;
    this.transceivers = new Map(); // source -> RTCRtpTransceiver
    this.publishing = Promise.resolve();
  }

  get you() {
    return this.participants.get(this.participantId) || null;
  }

  /** Whether the server tells us about everyone, or only the stage, ourselves and counts. */
  get fullView() {
    return inFullView(this.you);
  }

  /**
   * Outside the full view the server no longer sends news of people off the stage (their
   * leaving included): keep only the stage and ourselves, so nobody lingers in the list.
   */
  prune() {
    if (this.fullView) return false;
    let pruned = false;
    for (const [id, p] of this.participants) {
      if (id === this.participantId || p.on_stage) continue;
      this.participants.delete(id);
      pruned = true;
    }
    return pruned;
  }

  // -- the socket ---------------------------------------------------------------------
  connect() {
    return new Promise((resolve, reject) => {
      const ws = (this.ws = new WebSocket(this.url));
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("could not reach the server"));
      ws.onclose = (e) => {
        if (ws !== this.ws) return; // a socket we already replaced
        this.closed = true;
        for (const waiter of this.pending.values()) waiter.reject(Object.assign(new Error("connection closed"), { code: "not_connected" }));
        this.pending.clear();
        this.emit("closed", { code: e.code, reason: e.reason });
      };
      ws.onmessage = (e) => {
        if (ws === this.ws) this.onMessage(JSON.parse(e.data));
      };
    });
  }

  request(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(Object.assign(new Error("not connected"), { code: "not_connected" }));
    }
    const id = String(this.nextId++);
    this.ws.send(JSON.stringify({ ...message, id }));
    return new Promise((resolve, reject) => {
      // A reply that never comes is an error the page shows, not a button that hangs.
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(Object.assign(new Error("The server did not answer in time; try again."), { code: "timeout" }));
        }
      }, this.requestTimeoutMs);
      const settle = (f) => (value) => { clearTimeout(timer); f(value); };
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
    });
  }

  /** Send a command (`{type, ...fields}`); resolves on `ack`, rejects with `.code`. */
  command(type, fields = {}) {
    return this.request({ type, ...fields });
  }

  async join(token, { entry = "viewer", viewerOnly = false, mic = true, camera = true, room } = {}) {
    this.holdOffers();
    const message = { type: "join", token, entry, viewer_only: viewerOnly, mic, camera };
    if (room) message.room = room;
    return this.applyJoined(await this.request(message));
  }

  /**
   * Take our place back after the connection dropped (within the server's grace period):
   * a new socket and new media connections; the stage state, role and seat are kept.
   * Publishing starts again with the next setSources().
   */
  async resume() {
    // The old media connections close only once the server has taken us back (or
    // refused): closing one ends its DTLS session, which a server still holding the
    // seat takes for a failed media connection, and that ends the session at once.
    const old = [this.publisher, this.subscriber];
    this.publisher = null;
    this.transceivers = new Map();
    this.publishing = Promise.resolve();
    this.midTracks = new Map();
    this.remoteTracks = new Map();
    this.bundleTag = null;
    this.closed = false;
    const previous = this.ws;
    this.ws = null;
    if (previous && previous.readyState <= WebSocket.OPEN) previous.close();
    this.subscriber = null;
    this.holdOffers();
    try {
      await this.connect();
      return this.applyJoined(await this.request({ type: "resume", room: this.room, resume_token: this.resumeToken }));
    } finally {
      for (const pc of old) if (pc) pc.close();
    }
  }

  /**
   * An offer may come before `joined`, which names the ICE servers the subscribe connection
   * needs: offers wait until applyJoined() made it.
   */
  holdOffers() {
    this.negotiation = new Promise((resolve) => {
      this.releaseOffers = resolve;
    });
  }

  applyJoined(joined) {
    this.iceServers = joined.ice_servers || [];
    this.iceErrors = [];
    this.mediaProblem = null;
    this.subscriber = this.connection("subscribe");
    this.releaseOffers();
    this.participantId = joined.participant_id;
    this.room = joined.room;
    this.role = joined.role;
    this.entries = joined.entries || ["viewer"];
    this.policy = joined.policy;
    this.counts = joined.counts;
    this.resumeToken = joined.resume_token;
    this.participants.clear();
    for (const p of joined.participants) this.participants.set(p.participant_id, p);
    this.participants.set(joined.you.participant_id, joined.you);
    for (const poll of joined.polls || []) this.polls.set(poll.poll_id, poll);
    this.emit("participants");
    this.emit("you", { before: null, after: joined.you });
    this.emit("policy", this.policy);
    this.emit("polls");
    return joined;
  }

  leave() {
    return this.request({ type: "leave" }).catch(() => {});
  }

  // -- incoming -------------------------------------------------------------------------
  onMessage(message) {
    const waiter = message.id != null ? this.pending.get(message.id) : undefined;
    if (waiter) {
      this.pending.delete(message.id);
      if (message.type === "error") {
        waiter.reject(Object.assign(new Error(message.message), { code: message.code, retryAfter: message.retry_after }));
      } else {
        waiter.resolve(message);
      }
      return;
    }
    switch (message.type) {
      case "subscribe_offer":
        this.negotiation = this.negotiation
          .then(() => this.answer(message.sdp))
          .catch((e) => this.emit("error", e));
        break;
      case "participant_joined":
      case "participant_updated":
        this.upsert(message.participant);
        break;
      case "participant_left":
        this.forget(message.participant_id);
        break;
      case "snapshot": {
        const you = this.you;
        this.participants.clear();
        for (const p of message.participants) this.participants.set(p.participant_id, p);
        if (you && !this.participants.has(you.participant_id)) this.participants.set(you.participant_id, you);
        this.counts = message.counts;
        this.emit("participants");
        this.emit("counts", this.counts);
        break;
      }
      case "counts":
        // sent when we leave the full view, and on each change while we are out of it
        this.counts = message.counts;
        if (this.prune()) this.emit("participants");
        this.emit("counts", this.counts);
        break;
      case "policy":
        this.policy = message.policy;
        this.emit("policy", this.policy);
        break;
      case "queues":
        this.queues = { hands: message.hands, requests: message.requests, seats: message.seats };
        this.emit("queues", this.queues);
        break;
      case "speaking": {
        const p = this.participants.get(message.participant_id);
        if (p) p.speaking = message.speaking;
        this.emit("participants");
        break;
      }
      case "active_speaker":
        this.activeSpeaker = message.participant_id;
        this.emit("active_speaker", message.participant_id);
        break;
      case "poll":
        this.polls.set(message.poll.poll_id, { ...this.polls.get(message.poll.poll_id), ...message.poll });
        this.emit("polls", message.poll);
        break;
      case "invited":
        this.invitation = message;
        this.emit("invited", message);
        break;
      case "invitation_ended":
        if (message.participant_id === this.participantId) this.invitation = null;
        this.emit("invitation_ended", message);
        break;
      case "error":
        this.emit("notice", message);
        break;
      default:
        // chat, request_declined, request_cancelled, stage_left, device_forced, host_left, bye
        this.emit(message.type, message);
    }
  }

  upsert(participant) {
    const before = this.participants.get(participant.participant_id);
    this.participants.set(participant.participant_id, participant);
    if (participant.participant_id === this.participantId) {
      this.prune(); // e.g. removed from the stage or demoted: out of the full view
      this.emit("you", { before, after: participant });
    } else if (!participant.on_stage && !this.fullView) {
      // someone leaving the stage while we only see the stage: we hear no more of them
      this.participants.delete(participant.participant_id);
    }
    this.emit("participants");
  }

  forget(participantId) {
    this.participants.delete(participantId);
    this.emit("participants");
  }

  // -- both connections ----------------------------------------------------------------------
  /** A new RTCPeerConnection with the server's ICE servers (relay-only if asked). */
  connection(name) {
    const pc = new RTCPeerConnection({
      ...CONNECTION,
      iceServers: this.iceServers,
      iceTransportPolicy: this.relay ? "relay" : "all",
    });
    // A TURN server that refuses our credentials (401) or cannot be reached (701) says so
    // only here; without it a relay-only connection just has no candidate.
    pc.addEventListener("icecandidateerror", (e) => {
      if (/^turns?:/.test(e.url || "")) this.iceErrors.push({ url: e.url, code: e.errorCode, text: e.errorText });
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc === this.subscriber || pc === this.publisher) {
        if (pc.connectionState === "failed") this.mediaFailed(name, "The media connection failed.");
      }
    });
    return pc;
  }

  /** Why media cannot flow, in words for the person in front of the page. */
  explainMediaFailure(fallback) {
    if (this.iceErrors.some((e) => e.code === 401)) {
      return "The relay server (TURN) refused this connection's credentials, so no audio or video can get through. Join again; if this keeps happening, tell the organiser.";
    }
    const turn = this.iceServers.flatMap((s) => [].concat(s.urls)).filter((u) => /^turns?:/.test(u));
    if (this.relay && !turn.length) return "Relay-only was asked for (?relay=1), but this server offers no relay server (TURN).";
    if (this.relay) {
      const why = this.iceErrors.length ? `: ${this.iceErrors[0].text || `error ${this.iceErrors[0].code}`}` : "";
      return `The relay server (TURN) could not be reached${why}. Check your network and join again.`;
    }
    return fallback;
  }

  /** Say once (media_failed) that media cannot flow, and why; returns the error to throw. */
  mediaFailed(connection, fallback) {
    const message = this.mediaProblem || this.explainMediaFailure(fallback);
    if (!this.mediaProblem) {
      this.mediaProblem = message;
      this.emit("media_failed", { connection, message });
    }
    return Object.assign(new Error(message), { code: "media_failed" });
  }

  // -- subscribe connection ----------------------------------------------------------------
  async answer(offer) {
    const pc = this.subscriber;
    const first = !pc.remoteDescription;
    const sdp = keepBundleTag(offer, this.bundleTag);
    this.bundleTag = this.bundleTag ?? bundleMids(sdp)[0] ?? null;
    const sections = parseMsids(sdp);
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    // No trickle ICE in the protocol: the answer must carry our candidates, or the
    // server (ICE-controlling here) has no pair to check and fails the connection.
    await iceGatheringComplete(pc);
    if (first && !hasCandidates(pc.localDescription.sdp)) throw this.mediaFailed("subscribe", "No network path for media was found.");
    await this.request({ type: "subscribe_answer", sdp: pc.localDescription.sdp });
    this.midTracks = new Map(sections.filter((s) => s.active).map((s) => [s.mid, s]));
    this.remoteTracks = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const section = this.midTracks.get(transceiver.mid);
      if (!section || transceiver.stopped || transceiver.currentDirection === "inactive") continue;
      this.remoteTracks.set(section.trackId, {
        track: transceiver.receiver.track,
        participantId: section.participantId,
        mid: transceiver.mid,
      });
    }
    this.emit("participants");
  }

  /** The forwarded tracks of one participant: [{track, source, kind, trackId}]. */
  tracksOf(participantId) {
    const participant = this.participants.get(participantId);
    const listed = new Map((participant?.tracks || []).map((t) => [t.track_id, t]));
    const out = [];
    for (const [trackId, entry] of this.remoteTracks) {
      if (entry.participantId !== participantId) continue;
      const kind = entry.track.kind;
      const info = listed.get(trackId);
      let source = info?.source;
      // A publisher we know nothing about (a viewer sharing content is not on the list
      // plain viewers receive) can only be sending content.
      if (!participant) source = kind === "video" ? "screen" : "screen_audio";
      if (source) out.push({ track: entry.track, source, kind, trackId });
    }
    return out;
  }

  // -- publish connection -------------------------------------------------------------------
  /**
   * Make the publish connection send exactly `wanted`: `{source: track | null}` for each
   * source that should be published (a null track keeps the m-section, and so the
   * server's producer, with nothing sent: a camera turned off). Sources left out stop
   * being published. Renegotiates only when the set of sending m-sections changes.
   * Calls are serialised; the promise settles when this one has been applied.
   */
  setSources(wanted) {
    const run = this.publishing.then(() => this.applySources(wanted));
    this.publishing = run.catch(() => {});
    return run;
  }

  async applySources(wanted) {
    let renegotiate = false;
    for (const source of SOURCES) {
      const want = Object.prototype.hasOwnProperty.call(wanted, source);
      let transceiver = this.transceivers.get(source);
      if (want) {
        if (!this.publisher) this.publisher = this.connection("publish");
        if (!transceiver) {
          const init = { direction: "sendonly" };
          const height = wanted[source]?.getSettings?.().height || 0;
          const encodings = source === "camera" && this.simulcast ? cameraEncodings(height) : null;
          if (encodings) init.sendEncodings = encodings;
          if (source === "screen") init.sendEncodings = SCREEN_ENCODINGS;
          transceiver = this.publisher.addTransceiver(KIND[source], init);
          this.transceivers.set(source, transceiver);
          renegotiate = true;
        }
        if (transceiver.direction !== "sendonly") {
          transceiver.direction = "sendonly";
          renegotiate = true;
        }
        const track = wanted[source] || null;
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
      } else if (transceiver) {
        if (transceiver.sender.track) await transceiver.sender.replaceTrack(null);
        if (transceiver.direction !== "inactive") {
          transceiver.direction = "inactive";
          renegotiate = true;
        }
      }
    }
    if (!renegotiate) return;
    try {
      await this.negotiatePublish();
    } catch (error) {
      // Nothing left to publish and no right to: the server already closed our producers
      // when the right went, and it refuses any offer from someone with no grants.
      if (!(error.code === "forbidden" && !Object.keys(wanted).length)) throw error;
    }
  }

  async negotiatePublish() {
    const pc = this.publisher;
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    if (!pc.remoteDescription && !hasCandidates(pc.localDescription.sdp)) {
      await pc.setLocalDescription({ type: "rollback" });
      throw this.mediaFailed("publish", "No network path for media was found.");
    }
    const sources = {};
    for (const [source, transceiver] of this.transceivers) {
      if (transceiver.mid != null && transceiver.direction === "sendonly") sources[transceiver.mid] = source;
    }
    try {
      const reply = await this.request({ type: "publish", sdp: pc.localDescription.sdp, sources });
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (error) {
      // Refused (e.g. no longer allowed): roll back so a later offer starts clean.
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      throw error;
    }
  }

  /** Publish every track of a stream (audio as microphone, video as camera). */
  publish(stream) {
    const wanted = {};
    for (const track of stream.getTracks()) wanted[track.kind === "audio" ? "microphone" : "camera"] = track;
    return this.setSources(wanted);
  }

  close() {
    for (const pc of [this.publisher, this.subscriber]) if (pc) pc.close();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** The m-sections of a subscribe offer: [{mid, participantId, trackId, active}]. */
export function parseMsids(sdp) {
  const sections = [];
  let current = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("m=")) {
      current = { mid: null, participantId: null, trackId: null, active: line.split(" ")[1] !== "0" };
      sections.push(current);
    } else if (current && line.startsWith("a=mid:")) {
      current.mid = line.slice(6).trim();
    } else if (current && line.startsWith("a=msid:")) {
      const [stream, track] = line.slice(7).trim().split(/\s+/);
      current.participantId = stream;
      current.trackId = track;
    } else if (current && line === "a=inactive") {
      current.active = false;
    }
  }
  return sections.filter((s) => s.mid !== null && s.trackId);
}

function hasCandidates(sdp) {
  return /(^|\n)a=candidate:/.test(sdp);
}

function bundleMids(sdp) {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith("a=group:BUNDLE"));
  return line ? line.slice("a=group:BUNDLE".length).trim().split(/\s+/).filter(Boolean) : [];
}

/**
 * The server rejects (port 0) the m-section of a track that went away, even the first one,
 * whose transport the BUNDLE group uses. Once every track has gone, such an offer has no
 * BUNDLE group at all: Chromium refuses it with max-bundle and would close the transport
 * with any other policy. So the BUNDLE-tag section is never rejected here: it stays in the
 * group as an inactive section with no track (the server has no consumer on it either).
 */
export function keepBundleTag(sdp, tag) {
  if (tag === null || tag === undefined) return sdp;
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const parts = sdp.split(/\r?\nm=/);
  let found = false;
  for (let i = 1; i < parts.length; i++) {
    const lines = parts[i].split(/\r?\n/);
    if (!lines.includes(`a=mid:${tag}`)) continue;
    found = true;
    const words = lines[0].split(" ");
    if (words[1] === "0") {
      words[1] = "9";
      lines[0] = words.join(" ");
      const direction = lines.findIndex((l) => /^a=(sendrecv|sendonly|recvonly|inactive)$/.test(l));
      if (direction >= 0) lines[direction] = "a=inactive";
      parts[i] = lines.join(eol);
    }
  }
  if (!found) return sdp;
  const session = parts[0].split(/\r?\n/);
  const group = session.findIndex((l) => l.startsWith("a=group:BUNDLE"));
  const mids = group >= 0 ? bundleMids(session[group]) : [];
  if (!mids.includes(tag)) {
    const line = `a=group:BUNDLE ${[tag, ...mids].join(" ")}`;
    if (group >= 0) session[group] = line;
    else session.splice(Math.max(1, session.findIndex((l) => l.startsWith("t="))) + 1, 0, line);
    parts[0] = session.join(eol);
  }
  return parts.join(`${eol}m=`);
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // send what we have rather than hang
  });
}
