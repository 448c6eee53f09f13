// The room screen: top bar, stage, side panel (people, chat, polls), bottom toolbar,
// the invitation pop-up and the notifications. Local media follows your participant
// entry as the server describes it (reconcile, don't patch).
import { choiceDialog, h, icon, menuButton, toast } from "./ui.js";
import { ACCESS_LABEL, isModerator, mayEndRoom, ROLE_LABEL, stageAction } from "./rules.js";
import { roomItems, run } from "./moderation.js";
import { StageView } from "./stage-view.js";
import { ParticipantsPanel } from "./participants.js";
import { ChatPanel, PollsPanel } from "./chat.js";
import { openDevices } from "./dialogs.js";
import { InvitationDialog } from "./invitation.js";

const $ = (selector) => document.querySelector(selector);
const RECONNECT_FOR_MS = 25000; // within the server's default 30 s grace
// Toolbar labels short enough to stay visible at phone width (by data-action).
const SHORT = {
  "toggle-mic": "Mic",
  "toggle-camera": "Camera",
  "join-stage": "Join",
  "request-stage": "Ask",
  "cancel-request": "Cancel",
  "leave-stage": "Off stage",
  "show-invitation": "Answer",
  "toggle-hand": "Hand",
  "toggle-present": "Present",
  "toggle-people": "People",
  "toggle-chat": "Chat",
  "open-settings": "Settings",
  "leave-room": "Leave",
};

export class RoomController {
  constructor({ client, media, onEnded }) {
    this.client = client;
    this.media = media;
    this.onEnded = onEnded;
    this.panelTab = null;
    this.unread = 0;
    this.renderQueued = false;
    this.syncing = null;
    this.syncAgain = false;

    this.stage = new StageView({ root: $("#stage"), client, media });
    const onNewPoll = () => this.openPollForm();
    this.people = new ParticipantsPanel({ root: $("#panel-people"), client });
    this.chat = new ChatPanel({ root: $("#panel-chat"), client, onUnread: () => this.markUnread() });
    this.polls = new PollsPanel({ root: $("#panel-polls"), client, onNewPoll });
    this.invitation = new InvitationDialog({ client, media, onAccept: (choice) => this.acceptInvitation(choice) });
    this.buildToolbar();
    this.wirePanel();
    this.wireClient();
    media.addEventListener("tracks", () => {
      // e.g. another camera chosen in Settings while on stage: publish the new track
      if (!this.ended && this.client.you) this.syncMedia();
      this.scheduleRender();
    });
    media.addEventListener("prefs", () => this.scheduleRender());
    this.render();
  }

  // -- rendering ---------------------------------------------------------------------------
  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const { client } = this;
    const you = client.you;
    if (!you) return;
    $("#room-name").textContent = client.room;
    const policy = client.policy || {};
    const access = policy.mode === "panel" ? "Panel room: speakers are invited" : ACCESS_LABEL[policy.stage_access] || "";
    $("#access-label").textContent = access;
    $("#access-label").dataset.access = policy.stage_access || "";
    const onStage = [...client.participants.values()].filter((p) => p.on_stage).length;
    const watching = this.people.groups();
    const viewers = watching.viewers.count + watching.waiting.count + watching.invited.count;
    $("#counts").textContent = `${onStage} on stage · ${viewers} watching`;
    $("#my-role").textContent = `You: ${ROLE_LABEL[you.role]}${you.speaker ? ", speaker" : ""}${you.on_stage ? " · on stage" : ""}`;
    this.stage.render();
    this.people.render();
    this.polls.render();
    this.renderToolbar();
  }

  // -- the toolbar -------------------------------------------------------------------------
  buildToolbar() {
    const bar = $("#toolbar");
    // Each tool has its full label (desktop, aria-label and tooltip) and a short one that
    // stays visible at phone width, where the full labels do not fit.
    const short = (text) => h("span", { className: "short", ariaHidden: "true" }, text);
    const button = (action, iconName, label, extra = {}) =>
      h("button", { type: "button", className: "tool", dataset: { action }, ariaLabel: label, title: label, ...extra }, icon(iconName), h("span", { className: "label" }, label), short(SHORT[action] || label));
    this.tools = {
      mic: button("toggle-mic", "mic", "Microphone", { ariaPressed: "false" }),
      camera: button("toggle-camera", "camera", "Camera", { ariaPressed: "false" }),
      stage: button("join-stage", "stage", "Join stage"),
      hand: button("toggle-hand", "hand", "Raise hand", { ariaPressed: "false" }),
      present: button("toggle-present", "screen", "Present", { ariaPressed: "false" }),
      people: button("toggle-people", "people", "Participants", { ariaExpanded: "false", ariaControls: "panel" }),
      chat: button("toggle-chat", "chat", "Chat", { ariaExpanded: "false", ariaControls: "panel" }),
      settings: button("open-settings", "settings", "Settings"),
      manage: menuButton({ label: "Manage the room", text: "Manage", className: "tool", iconName: "shield", action: "manage", items: () => roomItems(this.client, { onNewPoll: () => this.openPollForm() }) }),
      leave: button("leave-room", "leave", "Leave", { className: "tool danger" }),
    };
    this.tools.manage.append(short("Manage"));
    this.tools.people.append(h("span", { className: "tool-badge", dataset: { badge: "people" } }));
    this.tools.chat.append(h("span", { className: "tool-badge", dataset: { badge: "chat" }, hidden: true }));
    const group = (name, ...items) => h("div", { className: `tool-group ${name}`, role: "group", ariaLabel: name }, ...items);
    bar.replaceChildren(
      group("Devices", this.tools.mic, this.tools.camera),
      group("Stage", this.tools.stage, this.tools.hand, this.tools.present),
      group("Room", this.tools.people, this.tools.chat, this.tools.manage, this.tools.settings),
      group("Leave", this.tools.leave),
    );
    this.tools.mic.addEventListener("click", () => this.toggleDevice("mic"));
    this.tools.camera.addEventListener("click", () => this.toggleDevice("camera"));
    this.tools.stage.addEventListener("click", () => this.stageButton());
    this.tools.hand.addEventListener("click", () => this.toggleHand());
    this.tools.present.addEventListener("click", () => this.togglePresent());
    this.tools.people.addEventListener("click", () => this.togglePanel("people"));
    this.tools.chat.addEventListener("click", () => this.togglePanel("chat"));
    this.tools.settings.addEventListener("click", () => openDevices(this.media, { mode: "settings" }));
    this.tools.leave.addEventListener("click", () => this.leaveButton());
  }

  renderToolbar() {
    const { client, tools } = this;
    const you = client.you;
    const onStage = you.on_stage;
    for (const [key, device, onLabel, offLabel] of [["mic", "mic", "Mute", "Unmute"], ["camera", "camera", "Stop camera", "Start camera"]]) {
      const tool = tools[key];
      const state = you[device];
      tool.hidden = !onStage;
      tool.dataset.state = state;
      tool.setAttribute("aria-pressed", String(state === "on"));
      const label = state === "locked" ? `${key === "mic" ? "Microphone" : "Camera"} locked by a moderator` : state === "on" ? onLabel : offLabel;
      this.setLabel(tool, label);
      tool.setAttribute("aria-disabled", String(state === "locked"));
      this.setIcon(tool, state === "on" ? device : state === "locked" ? "lock" : `${device}Off`);
    }
    const stage = stageAction(you, client.policy);
    tools.stage.hidden = !stage;
    if (stage) {
      tools.stage.dataset.action = stage.action;
      this.setLabel(tools.stage, stage.label, SHORT[stage.action]);
      tools.stage.classList.toggle("accent", stage.action === "join-stage" || stage.action === "request-stage" || stage.action === "show-invitation");
    }
    const hand = you.hand != null;
    tools.hand.setAttribute("aria-pressed", String(hand));
    this.setLabel(tools.hand, hand ? "Lower hand" : "Raise hand");
    // with no stage button (invitation only), a raised hand is how to ask: offer it first
    tools.hand.classList.toggle("accent", !stage && !hand && you.status === "viewer" && !you.viewer_only && !isModerator(you));
    const presenting = Boolean(this.media.screen);
    tools.present.hidden = !you.can_present;
    tools.present.setAttribute("aria-pressed", String(presenting));
    this.setLabel(tools.present, presenting ? "Stop presenting" : "Present");
    tools.manage.hidden = !isModerator(you);
    const groups = this.people.groups();
    tools.people.querySelector(".tool-badge").textContent = String(groups.stage.count + groups.waiting.count + groups.invited.count + groups.viewers.count);
    const chatBadge = tools.chat.querySelector(".tool-badge");
    chatBadge.hidden = this.unread === 0;
    chatBadge.textContent = String(this.unread);
    tools.people.setAttribute("aria-expanded", String(this.panelTab === "people"));
    tools.chat.setAttribute("aria-expanded", String(this.panelTab === "chat"));
  }

  setLabel(tool, label, shortLabel = null) {
    if (tool.getAttribute("aria-label") === label) return;
    tool.setAttribute("aria-label", label);
    tool.title = label;
    tool.querySelector(".label").textContent = label;
    if (shortLabel) tool.querySelector(".short").textContent = shortLabel;
  }

  setIcon(tool, name) {
    if (tool.dataset.icon === name) return;
    tool.dataset.icon = name;
    tool.querySelector(".icon").replaceWith(icon(name));
  }

  // -- actions -----------------------------------------------------------------------------
  async toggleDevice(device) {
    const you = this.client.you;
    if (!you || !you.on_stage) return;
    if (you[device] === "locked") {
      toast(`A moderator locked your ${device === "mic" ? "microphone" : "camera"}. Raise your hand to ask for it.`, { kind: "locked" });
      return;
    }
    const on = you[device] !== "on";
    // Off takes effect here at once; on waits for the server to agree.
    if (!on && device === "mic" && this.media.mic) this.media.mic.enabled = false;
    this.media.setPref(device, on);
    await run(this.client, "set_device", { device, on });
    this.syncMedia();
  }

  /** Raise or lower your own hand; remembers a lowering of yours, so only a moderator's is announced. */
  async toggleHand() {
    const lower = this.client.you?.hand != null;
    this.lowering = lower;
    if (!(await run(this.client, lower ? "lower_hand" : "raise_hand"))) this.lowering = false;
  }

  async stageButton() {
    const action = this.tools.stage.dataset.action;
    const client = this.client;
    if (action === "join-stage") await this.joinStage();
    else if (action === "request-stage") {
      if (await run(client, "request_stage")) toast("Your request was sent. A moderator will answer it.", { kind: "request-sent" });
    } else if (action === "cancel-request") await run(client, "cancel_request");
    else if (action === "leave-stage") await run(client, "leave_stage");
    else if (action === "show-invitation") this.invitation.reopen();
  }

  /** The "Get ready to join the stage" device check, then join_stage with the choices. */
  async joinStage({ skipCheck = false } = {}) {
    if (!skipCheck) {
      const ok = await openDevices(this.media, { mode: "ready" });
      if (!ok) return false;
    }
    const { mic, camera } = this.media.prefs;
    return run(this.client, "join_stage", { mic, camera });
  }

  async acceptInvitation({ revision }) {
    const { mic, camera } = this.media.prefs;
    return run(this.client, "accept_invitation", { revision, mic, camera });
  }

  async togglePresent() {
    if (this.media.screen) {
      this.media.stopScreen();
    } else {
      try {
        await this.media.startScreen();
      } catch (error) {
        if (error && error.name !== "NotAllowedError") toast(`Could not share the screen: ${error.message}`, { kind: "present-failed", tone: "alert" });
        return;
      }
    }
    this.syncMedia();
  }

  /** Leave; a host chooses between leaving (the room goes on) and ending it for everyone. */
  async leaveButton() {
    if (!mayEndRoom(this.client.you, this.client.policy)) return this.leave();
    const choice = await choiceDialog(
      "Leave the room?",
      "You are a host. Leave and the room goes on without you, or end it for everyone: everyone is disconnected and the room closes.",
      [
        { value: "leave-only", label: "Leave" },
        { value: "end-room", label: "End for everyone", danger: true },
      ],
    );
    if (choice === "leave-only") await this.leave();
    else if (choice === "end-room") await this.endRoom();
  }

  /** The server's `bye` (room_ended) follows the ack and ends the page, as for everyone. */
  async endRoom() {
    await run(this.client, "end_room");
  }

  async leave() {
    await this.client.leave();
    if (this.ended) return; // the server's goodbye came first
    this.teardown();
    this.onEnded({ reason: "left" });
  }

  openPollForm() {
    this.showPanel("polls");
    this.polls.openForm();
  }

  // -- the side panel ----------------------------------------------------------------------
  wirePanel() {
    $("#panel-close").replaceChildren(icon("close"));
    $("#panel-close").addEventListener("click", () => this.showPanel(null));
    const tabs = [...document.querySelectorAll('#panel [role="tab"]')];
    for (const tab of tabs) {
      tab.addEventListener("click", () => this.showPanel(tab.dataset.tab));
      tab.addEventListener("keydown", (e) => {
        const i = tabs.indexOf(tab);
        const next = e.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : e.key === "ArrowLeft" ? tabs[(i - 1 + tabs.length) % tabs.length] : null;
        if (!next) return;
        e.preventDefault();
        this.showPanel(next.dataset.tab);
        next.focus();
      });
    }
    $("#panel").addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !document.querySelector(".menu")) this.showPanel(null);
    });
  }

  togglePanel(tab) {
    this.showPanel(this.panelTab === tab ? null : tab);
  }

  showPanel(tab) {
    const previous = this.panelTab;
    this.panelTab = tab;
    const panel = $("#panel");
    panel.hidden = !tab;
    document.body.classList.toggle("panel-open", Boolean(tab));
    for (const name of ["people", "chat", "polls"]) {
      const selected = name === tab;
      const tabButton = $(`#tab-${name}`);
      tabButton.setAttribute("aria-selected", String(selected));
      tabButton.tabIndex = selected ? 0 : -1;
      $(`#panel-${name}`).hidden = !selected;
    }
    if (tab === "chat") {
      this.unread = 0;
      if (previous !== "chat") $("#chat-input").focus();
    } else if (tab && previous !== tab) {
      $(`#tab-${tab}`).focus();
    }
    if (!tab && previous) this.tools[previous === "chat" ? "chat" : "people"].focus();
    this.render();
  }

  markUnread() {
    if (this.panelTab === "chat") return;
    this.unread += 1;
    this.renderToolbar();
  }

  // -- the server's news -----------------------------------------------------------------------
  wireClient() {
    const { client } = this;
    const on = (type, fn) => client.addEventListener(type, (e) => fn(e.detail));
    for (const type of ["participants", "counts", "queues", "polls", "policy", "active_speaker"]) on(type, () => this.scheduleRender());
    on("queues", (queues) => this.handsChanged(queues.hands));
    on("you", ({ before, after }) => this.youChanged(before, after));
    on("invited", (message) => this.invitation.open(message));
    on("invitation_ended", (message) => this.invitationEnded(message));
    on("request_declined", () => toast("Your request to join the stage was declined.", { kind: "request-declined" }));
    on("request_cancelled", () => toast("Stage access changed, so your request to join the stage was cancelled.", { kind: "request-cancelled" }));
    on("stage_left", ({ reason, by_name: byName }) => {
      const text = {
        removed: `${byName || "A moderator"} moved you off the stage. You are now a viewer.`,
        stage_full: "The stage was full, so you are now a viewer.",
        not_allowed: "You may no longer be on stage. You are now a viewer.",
      }[reason];
      if (text) toast(text, { kind: reason === "removed" ? "removed" : "stage-left", timeout: 10000 });
    });
    on("device_forced", (message) => this.deviceForced(message));
    on("host_left", (message) => this.hostLeft(message));
    on("polls", (poll) => {
      if (poll && !poll.closed && !this.seenPolls?.has(poll.poll_id)) {
        this.seenPolls = this.seenPolls || new Set();
        this.seenPolls.add(poll.poll_id);
        if (this.panelTab !== "polls") toast(`New poll: ${poll.question}`, { kind: "poll", action: { label: "Vote", run: () => this.showPanel("polls") } });
      }
    });
    on("notice", (message) => toast(message.message, { kind: "server-error", tone: "alert" }));
    on("media_failed", ({ message }) => {
      window.stageState.mediaError = message;
      toast(message, { kind: "media-failed", tone: "alert", timeout: 0 });
    });
    on("bye", (bye) => {
      if (this.ended) return;
      this.teardown();
      this.onEnded(bye);
    });
    on("closed", () => this.reconnect());
    this.seenPolls = new Set(client.polls.keys());
    // a moderator's first queues come before `joined`: they are the hands already up
    this.knownHands = isModerator(client.you) ? new Set(client.queues.hands.map((e) => e.participant_id)) : null;
  }

  youChanged(before, after) {
    if (after && after.status === "invited" && before && before.status !== "invited") this.invitation.noteStatus(before.status);
    if (!isModerator(after)) this.knownHands = null; // a new moderator's first queues are no news
    if (before && after) {
      if (before.role !== after.role) toast(`You are now ${after.role === "participant" ? "a participant" : `a ${after.role}`}.`, { kind: "role" });
      if (!before.speaker && after.speaker) toast("You are now a speaker: you can join the stage at any time.", { kind: "speaker" });
      if (!before.can_present && after.can_present && after.role === "participant") toast("You may now present your screen.", { kind: "present-allowed" });
      if (before.status === "queued" && after.status === "on_stage") toast("A seat is free: you are on stage now.", { kind: "seated" });
      if (before.hand != null && after.hand == null) {
        // taking a seat lowers the hand too; only a moderator's lowering is news
        if (!this.lowering && !after.on_stage) toast("A moderator lowered your hand.", { kind: "hand-lowered" });
        this.lowering = false;
      }
    }
    this.syncMedia();
    this.scheduleRender();
  }

  /** Hosts and moderators: say who raised a hand (the queues' diff; none for the first list). */
  handsChanged(hands) {
    const ids = new Set(hands.map((e) => e.participant_id));
    const known = this.knownHands;
    this.knownHands = ids;
    if (!known) return;
    const raised = hands.filter((e) => !known.has(e.participant_id) && e.participant_id !== this.client.participantId);
    if (!raised.length) return;
    const names = raised.map((e) => e.name);
    const who = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
    toast(`${who} raised ${names.length === 1 ? "a hand" : "their hands"}.`, {
      kind: "hand-raised",
      action: this.panelTab === "people" ? null : { label: "Show", run: () => this.showPanel("people") },
    });
  }

  invitationEnded(message) {
    const mine = message.participant_id === this.client.participantId;
    if (mine) {
      this.invitation.close();
      const text = {
        revoked: "The invitation to the stage was withdrawn.",
        expired: "The invitation to the stage expired.",
        stage_full: "The stage is full, so the invitation could not be accepted.",
      }[message.reason];
      if (text) toast(text, { kind: `invitation-${message.reason}` });
      return;
    }
    const person = this.client.participants.get(message.participant_id);
    if (person && (message.reason === "declined" || message.reason === "expired")) {
      toast(`${person.name} ${message.reason === "declined" ? "declined" : "did not answer"} the invitation to the stage.`, { kind: `invitation-${message.reason}` });
    }
  }

  /** The room has no host any more: say who left and who runs the room now. */
  hostLeft({ name, role, moderators, ends_in: endsIn }) {
    const who = `${name} (${role === "host" ? "the host" : "a moderator"}) left the room.`;
    let text;
    if (moderators > 0) text = `${who} ${moderators === 1 ? "A moderator is" : "Moderators are"} running the room now.`;
    else text = `${who} Nobody is moderating the room now; the stage goes on.`;
    if (endsIn != null) {
      const minutes = Math.round(endsIn / 60);
      const when = endsIn < 90 ? `${Math.round(endsIn)} seconds` : `${minutes} minutes`;
      text += ` The room ends in ${when} unless a host or moderator joins.`;
    }
    toast(text, { kind: "host-left", timeout: 15000 });
  }

  deviceForced({ device, state, by_name: byName }) {
    const noun = device === "mic" ? "microphone" : "camera";
    const who = byName || "A moderator";
    if (device === "mic" && this.media.mic && state !== "on") this.media.mic.enabled = false;
    const text =
      state === "locked"
        ? `${who} turned your ${noun} off and locked it.`
        : state === "muted"
          ? `${who} ${device === "mic" ? "muted your microphone" : "turned your camera off"}. You can turn it back on.`
          : `${who} unlocked your ${noun}.`;
    toast(text, { kind: "device-forced", timeout: 9000 });
  }

  // -- local media -----------------------------------------------------------------------------
  /** Make the local tracks and what we publish match your entry; coalesced and serialised. */
  syncMedia() {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.applyMedia();
        } catch (error) {
          console.warn("media", error);
        }
      } while (this.syncAgain && !this.ended);
    })().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  async applyMedia() {
    const { client, media } = this;
    const you = client.you;
    if (!you || this.ended) return;
    const onStage = you.on_stage;
    media.stage = { mic: onStage, camera: onStage && you.camera === "on" };
    await media.update();
    if (media.mic) media.mic.enabled = onStage ? you.mic === "on" : true;
    if (media.screen && !you.can_present) media.stopScreen();
    const wanted = {};
    if (onStage) {
      wanted.microphone = media.mic;
      wanted.camera = you.camera === "on" ? media.camera : null;
    }
    if (media.screen) wanted.screen = media.screen;
    await client.setSources(wanted);
    window.stageState.publishing = Object.keys(wanted).filter((k) => wanted[k]).sort();
    this.scheduleRender();
  }

  /** The socket dropped without a goodbye: resume within the server's grace period. */
  async reconnect() {
    if (this.ended || this.reconnecting) return;
    this.reconnecting = true;
    window.stageState.status = "reconnecting";
    const notice = toast("Connection lost. Reconnecting…", { kind: "reconnecting", timeout: 0 });
    const deadline = performance.now() + RECONNECT_FOR_MS;
    let delay = 250;
    try {
      while (!this.ended && performance.now() < deadline) {
        try {
          await this.client.resume();
          window.stageState.status = "joined";
          window.stageState.publishing = []; // the old media connections are gone
          notice.remove();
          toast("Reconnected.", { kind: "reconnected" });
          this.syncMedia();
          this.render();
          return;
        } catch (error) {
          // resume_failed: the seat is gone (grace over, or removed meanwhile)
          if (error.code === "resume_failed" || error.code === "banned") break;
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, 4000);
        }
      }
      notice.remove();
      if (!this.ended) {
        this.teardown();
        this.onEnded({ reason: "connection_lost" });
      }
    } finally {
      this.reconnecting = false;
    }
  }

  teardown() {
    if (this.ended) return;
    this.ended = true;
    this.invitation.close();
    this.stage.nerdStats.stop();
    this.media.stage = { mic: false, camera: false };
    this.media.stopScreen();
    this.media.update();
    this.client.close();
  }
}

