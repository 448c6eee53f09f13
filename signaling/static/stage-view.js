// The stage: one tile per stage member (webcam, or initials on a dark background when the
// camera is off; the name and a microphone indicator), shared content as the main tile,
// and the audio of everyone we receive. Tiles are kept and updated in place, so video
// elements never restart and focus never jumps.
import { h, hue, icon, initials, menuButton } from "./ui.js";
import { displayNames, isModerator, micState, MIC_LABEL } from "./rules.js";
import { personItems } from "./moderation.js";
import { canChooseSpeaker } from "./devices.js";
import { TrackViews } from "./track-views.js";
import { NerdStats } from "./nerd-stats.js";

const MAX_TILES = 25;
// A live video tile with no new frame for this long says so, rather than freezing
// silently or showing initials as if the camera were off.
const STALL_MS = 2500;
const GAP = 10;
const MIC_ICON = { on: "mic", speaking: "mic", off: "micOff", muted: "micOff", locked: "lock" };

export class StageView {
  constructor({ root, client, media }) {
    this.root = root;
    this.client = client;
    this.media = media;
    this.grid = h("div", { className: "grid", role: "list", ariaLabel: "People on stage" });
    this.main = h("div", { className: "main", role: "region", ariaLabel: "Shared content" });
    this.empty = h("p", { className: "stage-empty" }, "Nobody is on the stage yet.");
    this.more = h("p", { className: "stage-more", hidden: true });
    this.audio = h("div", { className: "audio-sinks", hidden: true });
    root.replaceChildren(this.grid, this.main, this.empty, this.more, this.audio);
    this.tiles = new Map(); // key -> tile element
    this.sinkId = "";
    this.views = new TrackViews(client);
    this.nerdStats = new NerdStats({ client, tiles: () => this.tiles.values() });
    setInterval(() => this.checkStalls(), 1000);
    new ResizeObserver(() => this.layout()).observe(root);
  }

  render() {
    const { client, media } = this;
    const you = client.you;
    const members = [...client.participants.values()].filter((p) => p.on_stage);
    const shown = members.slice(-MAX_TILES); // the most recent when more than fit
    const wanted = new Map();
    for (const p of shown) {
      const self = p.participant_id === client.participantId;
      const remote = self ? null : client.tracksOf(p.participant_id).find((t) => t.source === "camera");
      wanted.set(`${p.participant_id}:camera`, {
        p, source: "camera", self, track: self ? media.camera : remote?.track, trackId: remote?.trackId,
      });
    }
    // content: every screen track we receive, plus our own while presenting
    const publishers = new Set([...client.remoteTracks.values()].map((t) => t.participantId));
    for (const pid of publishers) {
      for (const t of client.tracksOf(pid)) {
        if (t.source !== "screen") continue;
        const p = client.participants.get(pid) || { participant_id: pid, name: "Someone", role: "participant" };
        wanted.set(`${pid}:screen`, { p, source: "screen", self: false, track: t.track, trackId: t.trackId });
      }
    }
    if (media.screen && you && you.can_present) {
      wanted.set(`${you.participant_id}:screen`, { p: you, source: "screen", self: true, track: media.screen });
    }

    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        this.views.forget(tile);
        tile.remove();
        this.tiles.delete(key);
      }
    }
    const names = displayNames(client.participants.values(), client.participantId);
    for (const [key, spec] of wanted) {
      spec.label = names.get(spec.p.participant_id) || spec.p.name;
      let tile = this.tiles.get(key);
      if (!tile) {
        tile = this.createTile(spec);
        this.tiles.set(key, tile);
        (spec.source === "screen" ? this.main : this.grid).append(tile);
      }
      this.updateTile(tile, spec, you);
    }
    const contents = [...wanted.values()].filter((s) => s.source === "screen").length;
    this.root.classList.toggle("has-content", contents > 0);
    this.root.dataset.count = String(shown.length);
    this.root.dataset.content = String(contents);
    this.empty.hidden = shown.length > 0 || contents > 0;
    this.more.hidden = members.length <= MAX_TILES;
    this.more.textContent = `+${members.length - MAX_TILES} more on stage`;
    this.renderAudio();
    this.layout();
  }

  createTile({ p, source, self }) {
    const video = h("video", { autoplay: true, playsInline: true, muted: true });
    video.addEventListener("resize", () => this.render());
    video.addEventListener("loadeddata", () => this.render());
    const tile = h(
      "figure",
      {
        className: `tile tile-${source}${self ? " self" : ""}`,
        role: source === "camera" ? "listitem" : undefined,
        dataset: { participant: p.participant_id, source },
      },
      video,
      h("div", { className: "avatar", ariaHidden: "true" }, h("span", { className: "initials" })),
      h("p", { className: "tile-notice", hidden: true, role: "status" }),
      h(
        "figcaption",
        { className: "tile-label" },
        source === "camera" ? h("span", { className: "mic-indicator", role: "img" }, icon("micOff")) : icon("screen"),
        h("span", { className: "name" }),
      ),
    );
    if (source === "camera") {
      const menu = menuButton({
        label: `Actions for ${p.name}`,
        className: "icon-button tile-menu",
        action: "tile-menu",
        items: () => personItems(this.client, this.client.participants.get(p.participant_id) || p),
      });
      tile.append(menu);
    }
    return tile;
  }

  updateTile(tile, { p, source, self, track, trackId, label }, you) {
    const video = tile.querySelector("video");
    this.views.show(tile, trackId, self ? null : track);
    tile.dataset.track = (!self && track && trackId) || ""; // the received track it shows
    if (track && (!video.srcObject || video.srcObject.getTracks()[0] !== track)) {
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      tile.videoSince = performance.now();
      this.followFrames(tile, video);
    } else if (!track && video.srcObject) {
      video.srcObject = null;
    }
    const decoding = Boolean(track) && (self || video.videoWidth > 0);
    const cameraOn = source === "screen" || p.camera === "on";
    tile.expectsVideo = Boolean(track) && !self && cameraOn;
    const showVideo = cameraOn && decoding;
    tile.classList.toggle("video-on", showVideo);
    tile.dataset.name = p.name;
    tile.dataset.video = showVideo ? "on" : "off";
    const name = label;
    tile.querySelector(".name").textContent = source === "screen" ? `${p.name}'s screen` : name;
    const avatar = tile.querySelector(".avatar");
    avatar.style.setProperty("--hue", String(hue(p.name)));
    tile.querySelector(".initials").textContent = source === "screen" ? "" : initials(p.name);
    if (source !== "camera") {
      tile.setAttribute("aria-label", `${p.name} is sharing their screen`);
      return;
    }
    tile.dataset.camera = p.camera;
    tile.dataset.mic = p.mic;
    tile.dataset.speaking = String(Boolean(p.speaking && p.mic === "on"));
    tile.dataset.connected = String(p.connected !== false);
    tile.classList.toggle("speaking", tile.dataset.speaking === "true");
    tile.classList.toggle("active-speaker", this.client.activeSpeaker === p.participant_id);
    const state = micState(p);
    const indicator = tile.querySelector(".mic-indicator");
    if (indicator.dataset.state !== state) {
      indicator.dataset.state = state;
      indicator.replaceChildren(icon(MIC_ICON[state]));
    }
    indicator.setAttribute("aria-label", MIC_LABEL[state]);
    indicator.title = MIC_LABEL[state]; // a tooltip for the icon (the lock says nothing by itself)
    tile.setAttribute("aria-label", `${name}: ${MIC_LABEL[state].toLowerCase()}, camera ${p.camera === "on" ? "on" : "off"}`);
    const menu = tile.querySelector(".tile-menu");
    if (menu) menu.hidden = !isModerator(you) || self;
  }

  /** Note each frame the tile's video presents (where the browser can tell). */
  followFrames(tile, video) {
    if (tile.followingFrames || !video.requestVideoFrameCallback) return;
    tile.followingFrames = true;
    const onFrame = () => {
      tile.lastFrame = performance.now();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  /** Tiles whose video stopped coming say so (the server paused it for this viewer's
   * connection, or nothing arrives); the notice goes when frames do. */
  checkStalls() {
    const now = performance.now();
    for (const tile of this.tiles.values()) {
      if (!tile.followingFrames) continue;
      if (!this.views.isShown(tile)) tile.videoSince = now; // paused on purpose: grace when shown
      const since = Math.max(tile.lastFrame || 0, tile.videoSince || 0);
      const stalled = Boolean(tile.expectsVideo) && now - since > STALL_MS;
      if ((tile.dataset.stalled === "true") === stalled) continue;
      tile.dataset.stalled = String(stalled);
      const notice = tile.querySelector(".tile-notice");
      notice.textContent = tile.lastFrame ? "Video paused: poor connection" : "Waiting for video…";
      notice.hidden = !stalled;
    }
  }

  renderAudio() {
    const wanted = new Map();
    for (const [trackId, entry] of this.client.remoteTracks) {
      if (entry.track.kind === "audio") wanted.set(trackId, entry.track);
    }
    for (const element of [...this.audio.children]) {
      if (!wanted.has(element.dataset.track)) element.remove();
    }
    const sinkId = this.media.prefs.speakerId || "";
    const sinkChanged = sinkId !== this.sinkId;
    this.sinkId = sinkId;
    for (const [trackId, track] of wanted) {
      let element = this.audio.querySelector(`audio[data-track="${CSS.escape(trackId)}"]`);
      if (!element) {
        element = h("audio", { autoplay: true, dataset: { track: trackId } });
        element.srcObject = new MediaStream([track]);
        this.audio.append(element);
        if (canChooseSpeaker && sinkId) element.setSinkId(sinkId).catch(() => {});
        element.play().catch(() => {});
      } else if (canChooseSpeaker && sinkChanged) {
        element.setSinkId(sinkId).catch(() => {});
      }
    }
  }

  /** Size the grid: the column count that gives the largest 16:9 tiles. */
  layout() {
    const count = this.grid.children.length;
    const rect = this.grid.getBoundingClientRect();
    if (!count || !rect.width || this.root.classList.contains("has-content")) return;
    const width = rect.width;
    const height = rect.height;
    let best = { cols: 1, w: 0, h: 0 };
    for (let cols = 1; cols <= count; cols++) {
      const rows = Math.ceil(count / cols);
      let w = (width - GAP * (cols - 1)) / cols;
      let hgt = (w * 9) / 16;
      const maxH = (height - GAP * (rows - 1)) / rows;
      if (hgt > maxH) {
        hgt = maxH;
        w = (hgt * 16) / 9;
      }
      if (w > best.w) best = { cols, w, h: hgt };
    }
    this.grid.style.setProperty("--cols", String(best.cols));
    this.grid.style.setProperty("--tile-w", `${Math.floor(best.w)}px`);
    this.grid.style.setProperty("--tile-h", `${Math.floor(best.h)}px`);
  }
}
