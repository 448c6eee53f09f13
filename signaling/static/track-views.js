// Tells the server how each received video is shown (`view_tracks`, docs/protocol.md):
// a tile off screen, or any tile while the page is hidden, needs nothing; a small tile
// needs only a small simulcast encoding. Changes are batched, so resizing a window or
// scrolling sends one message, not one per frame.
const BATCH_MS = 250;

export class TrackViews {
  constructor(client) {
    this.client = client;
    this.tiles = new Map(); // element -> {trackId, intersecting}
    this.sent = new Map(); // track id -> "visible:height" last sent
    this.timer = null;
    this.resizes = new ResizeObserver(() => this.schedule());
    this.intersections = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const tile = this.tiles.get(entry.target);
        if (tile) tile.intersecting = entry.isIntersecting;
      }
      this.schedule();
    });
    document.addEventListener("visibilitychange", () => this.schedule());
  }

  /**
   * Follow `element` as the tile of the received `track` (its `trackId` as the server
   * names it); a null track: the element shows nothing received. A new track object
   * (a new subscribe connection after a resume) starts from the server's defaults, so
   * its view is sent again.
   */
  show(element, trackId, track) {
    const tile = this.tiles.get(element);
    if (tile && tile.track === track) return;
    if (!track) {
      this.forget(element);
      return;
    }
    if (!tile) {
      this.resizes.observe(element);
      this.intersections.observe(element);
    }
    this.sent.delete(trackId);
    this.tiles.set(element, { trackId, track, intersecting: tile ? tile.intersecting : true });
    this.schedule();
  }

  /** Whether the server is told to forward `element`'s video now. */
  isShown(element) {
    const tile = this.tiles.get(element);
    return Boolean(tile) && tile.intersecting && document.visibilityState !== "hidden";
  }

  forget(element) {
    if (!this.tiles.delete(element)) return;
    this.resizes.unobserve(element);
    this.intersections.unobserve(element);
  }

  schedule() {
    if (this.timer === null) this.timer = setTimeout(() => this.flush(), BATCH_MS);
  }

  flush() {
    this.timer = null;
    const pageVisible = document.visibilityState !== "hidden";
    const tracks = [];
    for (const [element, { trackId, intersecting }] of this.tiles) {
      const visible = pageVisible && intersecting && element.isConnected;
      const height = visible ? Math.round(element.clientHeight * (window.devicePixelRatio || 1)) : 0;
      const key = `${visible}:${height}`;
      if (this.sent.get(trackId) === key) continue;
      this.sent.set(trackId, key);
      tracks.push({ track_id: trackId, visible, height: Math.min(height, 4320) });
    }
    for (let i = 0; i < tracks.length; i += 64) {
      this.client.request({ type: "view_tracks", tracks: tracks.slice(i, i + 64) }).catch(() => {});
    }
  }
}
