// "Stats for nerds": on each received video tile, what this browser decodes (from the
// subscribe connection's getStats) beside what the server forwards and why
// (`get_media_stats`, docs/protocol.md), so a person can see why a tile looks poor.
// Off by default, remembered in this browser; while off nothing is polled at all.
import { h } from "./ui.js";

const STORAGE_KEY = "stage-sfu.nerd-stats";
const CHANGED = "stage-sfu:nerd-stats";
const REFRESH_MS = 1000;
const LIMITS = {
  hidden: "hidden",
  paused: "paused by the publisher",
  connecting: "connecting",
  bandwidth_paused: "paused: bandwidth",
  key_frame: "waiting for a key frame",
  publisher: "publisher sends no higher",
  bandwidth: "bandwidth",
  tile_size: "tile size",
};

export function nerdStatsOn() {
  try {
    return localStorage.getItem(STORAGE_KEY) === "on";
  } catch {
    return false;
  }
}

export function setNerdStats(on) {
  try {
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
  } catch {
    // private mode or storage full: the choice lasts for this page only
  }
  document.dispatchEvent(new CustomEvent(CHANGED, { detail: on }));
}

/** The Settings switch: on a change, every open room follows. */
export function nerdStatsSwitch(idPrefix) {
  const input = h("input", { type: "checkbox", id: `${idPrefix}-nerd-stats`, className: "switch", checked: nerdStatsOn(), dataset: { toggle: "nerd-stats" } });
  input.addEventListener("change", () => setNerdStats(input.checked));
  return h(
    "div",
    { className: "device-toggles" },
    h("label", { className: "switch-label", htmlFor: input.id }, input, h("span", {}, "Stats for nerds")),
    h("p", { className: "hint" }, "Show on each video what it receives and why it has that quality."),
  );
}

const kbps = (bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`);
const layerName = (encodings, index) => encodings[index]?.rid || String(index);

/** Follows the stage's tiles (`data-track` names the received track) while switched on. */
export class NerdStats {
  constructor({ client, tiles }) {
    this.client = client;
    this.tiles = tiles; // () => the tile elements
    this.timer = null;
    this.busy = false;
    this.stopped = false;
    this.previous = new Map(); // track id -> {bytes, at}: for the received bitrate
    document.addEventListener(CHANGED, () => this.follow());
    this.follow();
  }

  follow() {
    const on = nerdStatsOn() && !this.stopped;
    if (on && this.timer === null) {
      this.timer = setInterval(() => this.refresh(), REFRESH_MS);
      this.refresh();
    } else if (!on && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
      this.previous.clear();
      for (const tile of this.tiles()) tile.querySelector(".nerd-stats")?.remove();
    }
  }

  /** The room ended: poll no more, whatever the switch says. */
  stop() {
    this.stopped = true;
    this.follow();
  }

  async refresh() {
    if (this.busy || !this.client.subscriber) return;
    this.busy = true;
    try {
      const [server, decoded] = await Promise.all([
        this.client.request({ type: "get_media_stats" }),
        this.decoded(),
      ]);
      if (this.timer === null) return; // switched off meanwhile
      const tracks = new Map(server.tracks.map((t) => [t.track_id, t]));
      for (const tile of this.tiles()) this.show(tile, tracks.get(tile.dataset.track), decoded.get(tile.dataset.track), server.downlink_bps);
    } catch {
      // a refused or lost request (rate limited, reconnecting): the next tick tries again
    } finally {
      this.busy = false;
    }
  }

  /** Per received video track: the decoded size and frame rate, and the bitrate received. */
  async decoded() {
    const out = new Map();
    const report = await this.client.subscriber.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      const section = this.client.midTracks.get(s.mid);
      if (!section) return;
      const before = this.previous.get(section.trackId);
      const now = { bytes: s.bytesReceived || 0, at: s.timestamp };
      this.previous.set(section.trackId, now);
      const seconds = before ? (now.at - before.at) / 1000 : 0;
      out.set(section.trackId, {
        width: s.frameWidth || 0,
        height: s.frameHeight || 0,
        fps: s.framesPerSecond || 0,
        bps: seconds > 0 ? ((now.bytes - before.bytes) * 8) / seconds : null,
      });
    });
    return out;
  }

  show(tile, track, decoded, downlink) {
    let box = tile.querySelector(".nerd-stats");
    if (!track) {
      box?.remove();
      return;
    }
    if (!box) {
      box = h("pre", { className: "nerd-stats", ariaLabel: "Stats for nerds" });
      tile.append(box);
    }
    const { encodings } = track;
    const names = encodings.map((e, i) => layerName(encodings, i)).join("/");
    const size = decoded && decoded.width ? `${decoded.width}×${decoded.height}` : "no picture";
    const fps = decoded ? `${Math.round(decoded.fps)} fps` : "";
    const rate = decoded && decoded.bps !== null ? kbps(decoded.bps) : "…";
    const sent = encodings[track.layer];
    const temporal = track.temporal_layer === null || !sent ? "none" : `T${track.temporal_layer} of T0–T${sent.temporal_layers - 1}`;
    const switches = `${track.layer_switches} switch${track.layer_switches === 1 ? "" : "es"}`;
    const lines = [
      `${size} · ${fps} · ${rate}`,
      `layer ${layerName(encodings, track.layer)} of ${names} · temporal ${temporal}`,
      `target ${layerName(encodings, track.target_layer)} · ${switches}`,
      `limited by ${LIMITS[track.limited_by] || "nothing"}`,
      `publisher sends it at ${sent ? kbps(sent.bitrate) : "?"} · downlink ${downlink === null ? "not estimated" : kbps(downlink)}`,
    ];
    box.textContent = lines.join("\n");
    Object.assign(box.dataset, {
      width: String(decoded ? decoded.width : 0),
      height: String(decoded ? decoded.height : 0),
      fps: String(decoded ? decoded.fps : 0),
      bitrate: String(decoded && decoded.bps !== null ? Math.round(decoded.bps) : ""),
      layer: layerName(encodings, track.layer),
      target: layerName(encodings, track.target_layer),
      limitedBy: track.limited_by || "",
      switches: String(track.layer_switches),
    });
  }
}
