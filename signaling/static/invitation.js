// The invitation pop-up: set devices, then "Join stage" or "Decline invitation".
// Closing it without an answer leaves the invitation open (the toolbar offers it again);
// it closes by itself when the invitation ends (revoked, expired, answered elsewhere).
import { mountDevicePanel } from "./devices.js";
import { run } from "./moderation.js";

const $ = (selector) => document.querySelector(selector);

export class InvitationDialog {
  constructor({ client, media, onAccept }) {
    this.client = client;
    this.media = media;
    this.onAccept = onAccept;
    this.message = null;
    this.panel = null;
    this.timer = null;
    this.dialog = $("#invitation");
    this.dialog.addEventListener("close", () => this.closed());
  }

  open(message) {
    this.message = message;
    this.deadline = performance.now() + message.expires_in * 1000;
    this.show();
  }

  reopen() {
    if (this.client.invitation) this.open({ ...this.client.invitation, expires_in: Math.max(0, (this.deadline - performance.now()) / 1000) });
  }

  show() {
    const { message } = this;
    const you = this.client.you;
    const approved = you && you.status === "invited" && this.wasRequested;
    $("#invitation-title").textContent = approved ? "Your request was approved" : "You're invited to the stage";
    this.tick();
    if (!this.panel) this.panel = mountDevicePanel($("#invitation-body"), this.media, { toggles: true, idPrefix: "invite" });
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector('[data-action="accept-invitation"]').focus();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 1000);
    this.dialog.dataset.revision = String(message.revision);
  }

  tick() {
    const left = Math.max(0, Math.round((this.deadline - performance.now()) / 1000));
    const by = this.message.by_name || "A moderator";
    $("#invitation-text").textContent = `${by} invited you to join the stage. Check your camera and microphone first. The invitation expires in ${left} s.`;
  }

  /** Remember whether the invitation answers a request (for the title). */
  noteStatus(before) {
    this.wasRequested = before === "requested";
  }

  closed() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.panel) this.panel.destroy();
    this.panel = null;
    const answer = this.dialog.returnValue;
    this.dialog.returnValue = "";
    const message = this.message;
    if (!message || !this.client.invitation) return;
    if (answer === "accept") this.onAccept({ revision: message.revision });
    else if (answer === "decline") run(this.client, "decline_invitation", { revision: message.revision });
  }

  close() {
    this.message = this.message && this.client.invitation ? this.message : null;
    if (this.dialog.open) {
      this.dialog.returnValue = "";
      this.dialog.close();
    }
  }
}
