// Devices: the person's choices (saved in localStorage), the local microphone, camera and
// screen tracks, and the "Set devices" panel (selects, camera preview, live mic meter).
import { h, icon } from "./ui.js";

const STORAGE_KEY = "stage-sfu.devices";
const DEFAULTS = { micId: "", cameraId: "", speakerId: "", mic: true, camera: true };
const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } };

/** The camera constraints: 1280x720 unless `height` (lines, 16:9) asks for another size. */
function cameraConstraints(height) {
  if (!Number.isInteger(height) || height < 90 || height > 2160) return { ...CAMERA };
  return { ...CAMERA, width: { ideal: Math.round((height * 16) / 9) }, height: { ideal: height } };
}

export const canChooseSpeaker = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

export function loadPrefs() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") };
  } catch {
    return { ...DEFAULTS };
  }
}

function savePrefs(prefs) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(prefs));
  } catch {
    // private mode or storage full: choices then last for this page only
  }
}

/**
 * The local tracks. Who needs what is declared, then `update()` acquires or releases:
 * the microphone while on stage or while a device panel is open, the camera while on
 * stage with the camera on or while a panel previews it, the screen while presenting.
 */
export class LocalMedia extends EventTarget {
  /** `cameraHeight`: capture the camera this many lines high instead of 720 (the simulcast
   * ladder follows: two encodings for 360). For tests on machines that cannot encode
   * several 720p cameras at once. */
  constructor({ cameraHeight = null } = {}) {
    super();
    this.cameraHeight = cameraHeight;
    this.prefs = loadPrefs();
    this.mic = null;
    this.camera = null;
    this.screen = null;
    this.previewing = 0; // open device panels
    this.stage = { mic: false, camera: false }; // what being on stage needs
    this.error = null;
    this.errorKind = null; // "mic" or "camera": which one `error` is about
    this.updating = Promise.resolve();
  }

  setPref(key, value) {
    this.prefs = { ...this.prefs, [key]: value };
    savePrefs(this.prefs);
    this.emit("prefs");
  }

  /** Choose a device; a live track of that kind is replaced by one from the new device. */
  async chooseDevice(kind, deviceId) {
    const key = { mic: "micId", camera: "cameraId", speaker: "speakerId" }[kind];
    this.setPref(key, deviceId);
    if (kind === "mic" && this.mic) await this.replace("mic");
    if (kind === "camera" && this.camera) await this.replace("camera");
  }

  update() {
    const run = this.updating.then(() => this.apply());
    this.updating = run.catch(() => {});
    return run;
  }

  async apply() {
    const wantMic = this.stage.mic || this.previewing > 0;
    const wantCamera = this.stage.camera || (this.previewing > 0 && this.prefs.camera);
    if (wantMic && !this.mic) await this.acquire("mic");
    if (!wantMic && this.mic) this.drop("mic");
    if (wantCamera && !this.camera) await this.acquire("camera");
    if (!wantCamera && this.camera) this.drop("camera");
  }

  async acquire(kind) {
    try {
      const track = await this.open(kind);
      this.error = null;
      this[kind] = track;
      this.emit("tracks");
    } catch (error) {
      this.error = describeMediaError(error, kind);
      this.errorKind = kind;
      this.emit("error", this.error);
    }
  }

  async open(kind) {
    const id = kind === "mic" ? this.prefs.micId : this.prefs.cameraId;
    const base = kind === "mic" ? { echoCancellation: true, noiseSuppression: true } : cameraConstraints(this.cameraHeight);
    const get = async (constraints) => {
      const stream = await navigator.mediaDevices.getUserMedia(kind === "mic" ? { audio: constraints } : { video: constraints });
      return kind === "mic" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    };
    if (!id) return get(base);
    try {
      // "ideal" is not enough: browsers may still prefer the default device
      return await get({ ...base, deviceId: { exact: id } });
    } catch (error) {
      if (error.name !== "OverconstrainedError" && error.name !== "NotFoundError") throw error;
      return get(base); // the chosen device is gone (unplugged): use the default one
    }
  }

  async replace(kind) {
    const old = this[kind];
    try {
      const track = await this.open(kind);
      track.enabled = old ? old.enabled : true;
      this[kind] = track;
      if (old) old.stop();
      this.emit("tracks");
    } catch (error) {
      this.error = describeMediaError(error, kind);
      this.errorKind = kind;
      this.emit("error", this.error);
    }
  }

  drop(kind) {
    if (this[kind]) this[kind].stop();
    this[kind] = null;
    this.emit("tracks");
  }

  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    const track = stream.getVideoTracks()[0];
    track.contentHint = "detail"; // the encoder keeps resolution and drops frames first
    track.addEventListener("ended", () => {
      if (this.screen === track) this.stopScreen();
    });
    this.screen = track;
    this.emit("tracks");
  }

  stopScreen() {
    if (this.screen) this.screen.stop();
    this.screen = null;
    this.emit("tracks");
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function describeMediaError(error, kind) {
  const what = kind === "mic" ? "microphone" : "camera";
  if (error && error.name === "NotAllowedError") return `The browser did not allow the ${what}.`;
  if (error && error.name === "NotFoundError") return `No ${what} was found.`;
  if (error && error.name === "NotReadableError") return `The ${what} is in use by another program.`;
  return `The ${what} could not be started${error && error.message ? `: ${error.message}` : "."}`;
}

/**
 * The "Set devices" panel, mounted into `container`: camera, microphone and speaker
 * choices (saved as they change), a camera preview and a live microphone meter. With
 * `toggles`, also the microphone/camera on-off switches used when entering the stage.
 * Returns `{ destroy }`; while mounted it counts as previewing.
 */
export function mountDevicePanel(container, media, { toggles = false, idPrefix = "dev" } = {}) {
  const selects = {
    camera: h("select", { id: `${idPrefix}-camera`, dataset: { device: "camera" } }),
    mic: h("select", { id: `${idPrefix}-mic`, dataset: { device: "mic" } }),
    speaker: h("select", { id: `${idPrefix}-speaker`, dataset: { device: "speaker" } }),
  };
  const video = h("video", { muted: true, autoplay: true, playsInline: true, className: "preview-video" });
  const previewText = h("span", {}, "Camera is off");
  const previewOff = h("div", { className: "preview-off" }, icon("cameraOff"), previewText);
  const meterFill = h("span", { className: "meter-fill" });
  const meter = h(
    "div",
    { className: "meter", role: "meter", ariaLabel: "Microphone level", ariaValueMin: "0", ariaValueMax: "100", ariaValueNow: "0", dataset: { level: "0" } },
    meterFill,
  );
  const status = h("p", { className: "device-status", role: "status" });
  const switches = {};
  const toggleRow = h("div", { className: "device-toggles" });
  if (toggles) {
    for (const [key, label] of [["mic", "Microphone on"], ["camera", "Camera on"]]) {
      const input = h("input", { type: "checkbox", id: `${idPrefix}-${key}-on`, className: "switch", checked: media.prefs[key], dataset: { toggle: key } });
      input.addEventListener("change", () => {
        media.setPref(key, input.checked);
        media.update();
        render();
      });
      switches[key] = input;
      toggleRow.append(h("label", { className: "switch-label", htmlFor: input.id }, input, h("span", {}, label)));
    }
  }
  const field = (label, select, extra = {}) =>
    h("div", { className: "field", ...extra }, h("label", { htmlFor: select.id }, label), select);
  const speakerField = field("Speaker", selects.speaker, { hidden: !canChooseSpeaker });
  const panel = h(
    "div",
    { className: "device-panel" },
    h("div", { className: "preview" }, video, previewOff, h("div", { className: "preview-meter" }, icon("mic"), meter)),
    h("div", { className: "device-fields" }, toggleRow, field("Camera", selects.camera), field("Microphone", selects.mic), speakerField, status),
  );
  container.replaceChildren(panel);

  for (const [kind, select] of Object.entries(selects)) {
    select.addEventListener("change", () => media.chooseDevice(kind, select.value));
  }

  let analyser = null;
  let audioContext = null;
  let source = null;
  let meteredTrack = null;
  const samples = new Float32Array(1024);

  function meterTrack(track) {
    if (meteredTrack === track) return;
    meteredTrack = track;
    if (source) source.disconnect();
    source = null;
    if (!track) return;
    audioContext = audioContext || new AudioContext();
    if (audioContext.state === "suspended") audioContext.resume().catch(() => {});
    analyser = analyser || Object.assign(audioContext.createAnalyser(), { fftSize: 1024 });
    source = audioContext.createMediaStreamSource(new MediaStream([track]));
    source.connect(analyser);
  }

  // A timer, not requestAnimationFrame: it keeps running in background tabs and tests.
  const timer = setInterval(() => {
    let level = 0;
    if (analyser && source && meteredTrack && meteredTrack.enabled) {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      // -60 dBFS .. 0 dBFS onto 0..100
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      level = Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100)));
    }
    meterFill.style.width = `${level}%`;
    meter.setAttribute("aria-valuenow", String(level));
    meter.dataset.level = String(level);
    if (level > 0) meter.dataset.peak = String(Math.max(level, Number(meter.dataset.peak || 0)));
  }, 100);

  async function fillSelects() {
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    const groups = { camera: "videoinput", mic: "audioinput", speaker: "audiooutput" };
    const chosen = { camera: media.camera, mic: media.mic };
    for (const [kind, select] of Object.entries(selects)) {
      const list = devices.filter((d) => d.kind === groups[kind]);
      const prefId = media.prefs[{ camera: "cameraId", mic: "micId", speaker: "speakerId" }[kind]];
      const liveId = chosen[kind] ? chosen[kind].getSettings().deviceId : "";
      const options = list.map((d, i) => h("option", { value: d.deviceId }, d.label || `${kind} ${i + 1}`));
      if (!list.length) options.push(h("option", { value: "" }, kind === "speaker" ? "System default" : `No ${kind === "mic" ? "microphone" : kind} found`));
      select.replaceChildren(...options);
      const wanted = [prefId, liveId].find((id) => id && list.some((d) => d.deviceId === id));
      if (wanted) select.value = wanted;
    }
  }

  function render() {
    // the camera this panel should show, as LocalMedia.apply() decides whether to open it
    const cameraOn = toggles ? media.prefs.camera : media.stage.camera || media.prefs.camera;
    const track = cameraOn ? media.camera : null;
    if (track) {
      if (!video.srcObject || video.srcObject.getVideoTracks()[0] !== track) video.srcObject = new MediaStream([track]);
    } else {
      video.srcObject = null;
    }
    video.hidden = !track;
    previewOff.hidden = Boolean(track);
    // while the switch is on, the camera is starting (or failed), not off
    previewText.textContent = !cameraOn ? "Camera is off" : media.error && media.errorKind === "camera" ? "No camera preview" : "Starting camera…";
    meterTrack(media.mic);
    status.textContent = media.error || "";
    for (const [key, input] of Object.entries(switches)) input.checked = Boolean(media.prefs[key]);
    fillSelects();
  }

  const onChange = () => render();
  media.addEventListener("tracks", onChange);
  media.addEventListener("error", onChange);
  navigator.mediaDevices?.addEventListener?.("devicechange", fillSelects);
  media.previewing += 1;
  media.update().then(render);
  render();

  return {
    element: panel,
    destroy() {
      clearInterval(timer);
      media.removeEventListener("tracks", onChange);
      media.removeEventListener("error", onChange);
      navigator.mediaDevices?.removeEventListener?.("devicechange", fillSelects);
      if (source) source.disconnect();
      if (audioContext) audioContext.close().catch(() => {});
      video.srcObject = null;
      media.previewing = Math.max(0, media.previewing - 1);
      media.update();
    },
  };
}
