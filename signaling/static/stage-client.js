// stage-sfu browser client: the WebSocket protocol (docs/protocol.md) and the
// two WebRTC connections it drives. No UI here; app.js renders.

const ICE = { iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };

export class StageClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.nextId = 1;
    this.pending = new Map();
    this.participants = new Map();
    this.streams = new Map(); // participant id -> MediaStream
    this.publisher = null;
    this.subscriber = null;
    this.participantId = null;
    this.negotiation = Promise.resolve();
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url);
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
      this.ws.onclose = (e) => this.emit("closed", { code: e.code, reason: e.reason });
      this.ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    });
  }

  request(message) {
    const id = String(this.nextId++);
    this.ws.send(JSON.stringify({ ...message, id }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  async join(token, entry) {
    this.subscriber = new RTCPeerConnection(ICE);
    this.subscriber.ontrack = (e) => this.onTrack(e);
    const joined = await this.request({ type: "join", token, entry });
    this.participantId = joined.participant_id;
    for (const p of joined.participants) this.participants.set(p.participant_id, p);
    this.emit("participants");
    return joined;
  }

  async publish(stream) {
    const pc = (this.publisher = new RTCPeerConnection(ICE));
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    const reply = await this.request({ type: "publish", sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  }

  leave() {
    return this.request({ type: "leave" }).catch(() => {});
  }

  onMessage(message) {
    const waiter = message.id != null ? this.pending.get(message.id) : undefined;
    if (waiter) {
      this.pending.delete(message.id);
      if (message.type === "error") waiter.reject(Object.assign(new Error(message.message), { code: message.code }));
      else waiter.resolve(message);
      return;
    }
    switch (message.type) {
      case "subscribe_offer":
        this.negotiation = this.negotiation.then(() => this.answer(message.sdp)).catch((e) => this.emit("error", e));
        break;
      case "participant_joined":
      case "participant_updated":
        this.participants.set(message.participant.participant_id, message.participant);
        this.emit("participants");
        break;
      case "participant_left":
        this.participants.delete(message.participant_id);
        this.streams.delete(message.participant_id);
        this.emit("participants");
        break;
      case "speaking": {
        const p = this.participants.get(message.participant_id);
        if (p) p.speaking = message.speaking;
        this.emit("participants");
        break;
      }
      default:
        this.emit(message.type, message);
    }
  }

  async answer(sdp) {
    const pc = this.subscriber;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    // No trickle ICE in the protocol: the answer must carry our candidates, or the
    // server (ICE-controlling here) has no pair to check and fails the connection.
    await iceGatheringComplete(pc);
    await this.request({ type: "subscribe_answer", sdp: pc.localDescription.sdp });
  }

  onTrack(event) {
    // The server labels tracks with msid "<participant id> <track id>".
    const stream = event.streams[0];
    if (!stream) return;
    this.streams.set(stream.id, stream);
    this.emit("participants");
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // send what we have rather than hang
  });
}
