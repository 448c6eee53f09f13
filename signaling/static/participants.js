// The participants panel: On stage, Raised hands & requests, Invited, Viewers, each with
// a count; role labels, microphone and hand icons, a search box, and the host/moderator
// actions (the room-wide ones are in the toolbar's Manage menu).
// Rows are keyed by participant and updated in place (speaking changes many times a
// second; a keyboard user's focus must not be lost to it).
import { h, hue, icon, initials, menuButton } from "./ui.js";
import { displayNames, inFullView, isModerator, micState, MIC_LABEL, ROLE_LABEL } from "./rules.js";
import { personItems, queueActions } from "./moderation.js";

const MIC_ICON = { on: "mic", speaking: "mic", off: "micOff", muted: "micOff", locked: "lock" };
const EMPTY = {
  stage: "Nobody is on stage.",
  waiting: "No raised hands or requests.",
  invited: "Nobody is invited.",
  viewers: "No other viewers.",
};
const STATUS_TEXT = {
  requested: "Asked to join the stage",
  invited: "Invited to the stage",
  queued: "Waiting for a free seat",
};

export class ParticipantsPanel {
  constructor({ root, client }) {
    this.client = client;
    this.query = "";
    this.search = h("input", {
      type: "search",
      id: "participant-search",
      className: "search-input",
      placeholder: "Search participants",
      ariaLabel: "Search participants",
      autocomplete: "off",
    });
    this.search.addEventListener("input", () => {
      this.query = this.search.value.trim().toLowerCase();
      this.render();
    });
    this.sections = {
      stage: this.section("stage", "On stage"),
      waiting: this.section("waiting", "Raised hands & requests"),
      invited: this.section("invited", "Invited"),
      viewers: this.section("viewers", "Viewers"),
    };
    this.note = h("p", { className: "panel-note" });
    root.replaceChildren(
      h("div", { className: "panel-tools" }, h("label", { className: "search" }, icon("search"), this.search)),
      this.note,
      ...Object.values(this.sections).map((s) => s.element),
    );
  }

  section(key, title) {
    const count = h("span", { className: "count", dataset: { count: key } }, "0");
    const list = h("ul", { className: "people", ariaLabel: title });
    const heading = h("h3", { id: `section-${key}` }, h("span", {}, title), count);
    const empty = h("p", { className: "section-empty" }, EMPTY[key]);
    const element = h("section", { className: "people-section", dataset: { section: key }, ariaLabelledby: `section-${key}` }, heading, list, empty);
    return { element, list, count, empty, rows: new Map() };
  }

  /** Who goes where, in which order, and the counts to show. */
  groups() {
    const client = this.client;
    const you = client.you;
    const everyone = [...client.participants.values()];
    const full = inFullView(you);
    const stage = everyone.filter((p) => p.on_stage);
    const invited = everyone.filter((p) => !p.on_stage && p.status === "invited");
    // waiting: requests first (queue order for moderators), then raised hands by order,
    // then the seat queue
    const order = new Map();
    client.queues.requests.forEach((e, i) => order.set(`r:${e.participant_id}`, i));
    const waiting = everyone.filter(
      (p) => !p.on_stage && p.status !== "invited" && (p.hand != null || p.status === "requested" || p.status === "queued"),
    );
    const rank = (p) => {
      if (p.status === "requested") return [0, order.get(`r:${p.participant_id}`) ?? 1e9, p.hand ?? 1e9];
      if (p.hand != null) return [1, p.hand, 0];
      return [2, 0, 0];
    };
    waiting.sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    });
    // positions in the hand queue (1 = first), as the server orders it; the server's queues
    // and a participant's record are separate messages (and may be coalesced apart for up to
    // 0.1 s), so until the queues list every raised hand the records' order stands in
    const raised = everyone.filter((p) => p.hand != null).sort((a, b) => a.hand - b.hand);
    const queued = isModerator(you) ? new Map(client.queues.hands.map((e) => [e.participant_id, e.position])) : new Map();
    const handOrder = queued.size && raised.every((p) => queued.has(p.participant_id))
      ? queued
      : new Map(raised.map((p, i) => [p.participant_id, i + 1]));
    const listed = new Set([...waiting, ...invited].map((p) => p.participant_id));
    const viewers = everyone.filter((p) => !p.on_stage && !listed.has(p.participant_id));
    // Outside the full view the list holds only the stage and ourselves: the rest are the
    // server's counts, taken as they are.
    const counts = client.counts;
    const waitingCount = full ? waiting.length : Math.min(counts.viewers, counts.hands + counts.requests);
    return {
      full,
      handOrder,
      stage: { people: stage, count: stage.length },
      waiting: { people: waiting, count: waitingCount },
      invited: { people: invited, count: invited.length },
      viewers: { people: viewers, count: full ? viewers.length : Math.max(0, counts.viewers - waitingCount) },
    };
  }

  render() {
    const client = this.client;
    const you = client.you;
    if (!you) return;
    const groups = this.groups();
    const names = displayNames(client.participants.values(), client.participantId);
    this.note.textContent = groups.full ? "" : "Viewers see who is on stage; the other viewers are counted.";
    this.note.hidden = groups.full;
    for (const key of ["stage", "waiting", "invited", "viewers"]) {
      const section = this.sections[key];
      const group = groups[key];
      const matches = this.query ? group.people.filter((p) => p.name.toLowerCase().includes(this.query)) : group.people;
      section.count.textContent = this.query ? `${matches.length} of ${group.count}` : String(group.count);
      section.element.dataset.total = String(group.count);
      // an empty "Invited" is noise (and plain viewers are never told of invitations)
      section.element.hidden = (Boolean(this.query) || key === "invited") && matches.length === 0;
      section.empty.hidden = matches.length > 0 || group.count > 0;
      if (!groups.full && !this.query && group.count > matches.length) {
        // plain viewers are told how many, not who
        const others = group.count - matches.length;
        section.empty.hidden = false;
        section.empty.textContent = `${matches.length ? "And " : ""}${others} ${key === "viewers" ? "watching" : "waiting"}`;
      } else {
        section.empty.textContent = EMPTY[key];
      }
      this.renderRows(section, matches, key, groups.handOrder, names);
    }
  }

  renderRows(section, people, key, handOrder, names) {
    const ids = new Set(people.map((p) => p.participant_id));
    for (const [id, row] of section.rows) {
      if (!ids.has(id)) {
        row.remove();
        section.rows.delete(id);
      }
    }
    let previous = null;
    for (const p of people) {
      let row = section.rows.get(p.participant_id);
      if (!row) {
        row = this.createRow(p);
        section.rows.set(p.participant_id, row);
      }
      this.updateRow(row, p, key, handOrder.get(p.participant_id), names.get(p.participant_id));
      // move only when out of place, so a focused button inside keeps its focus
      const expected = previous ? previous.nextElementSibling : section.list.firstElementChild;
      if (expected !== row) section.list.insertBefore(row, expected);
      previous = row;
    }
  }

  createRow(p) {
    const client = this.client;
    const menu = menuButton({
      label: `Actions for ${p.name}`,
      action: "person-menu",
      items: () => personItems(client, client.participants.get(p.participant_id) || p),
    });
    return h(
      "li",
      { className: "person", dataset: { participant: p.participant_id } },
      h("span", { className: "person-avatar", ariaHidden: "true" }),
      h("span", { className: "who" }, h("span", { className: "person-name" }), h("span", { className: "badges" }), h("span", { className: "status" })),
      h("span", { className: "indicators" }),
      h("span", { className: "row-actions" }),
      menu,
    );
  }

  updateRow(row, p, section, handPosition, label) {
    const client = this.client;
    const you = client.you;
    const self = p.participant_id === client.participantId;
    Object.assign(row.dataset, {
      name: p.name,
      role: p.role,
      status: p.status,
      section,
      mic: p.mic,
      hand: p.hand != null ? String(handPosition ?? "") : "",
    });
    row.querySelector(".person-name").textContent = label;
    const avatar = row.querySelector(".person-avatar");
    avatar.style.setProperty("--hue", String(hue(p.name)));
    avatar.textContent = initials(p.name);

    const badges = [];
    if (p.role !== "participant") badges.push([p.role, ROLE_LABEL[p.role]]);
    if (p.speaker) badges.push(["speaker", "Speaker"]);
    if (p.can_present && p.role === "participant") badges.push(["presenter", "Can present"]);
    if (p.viewer_only) badges.push(["viewer-only", "Watching only"]);
    const badgeKey = badges.map((b) => b[0]).join(",");
    const badgeBox = row.querySelector(".badges");
    if (badgeBox.dataset.key !== badgeKey) {
      badgeBox.dataset.key = badgeKey;
      badgeBox.replaceChildren(...badges.map(([k, text]) => h("span", { className: `badge badge-${k}`, dataset: { badge: k } }, text)));
    }
    const status = p.connected === false ? "Reconnecting…" : STATUS_TEXT[p.status] || "";
    row.querySelector(".status").textContent = status;

    // indicators: hand (with its place in the queue), microphone for stage members
    const indicators = row.querySelector(".indicators");
    const mic = p.on_stage ? micState(p) : null;
    const indicatorKey = `${p.hand != null ? handPosition : "-"}|${mic}`;
    if (indicators.dataset.key !== indicatorKey) {
      indicators.dataset.key = indicatorKey;
      const parts = [];
      const handText = handPosition ? `Hand raised, number ${handPosition}` : "Hand raised";
      if (p.hand != null) {
        parts.push(
          h(
            "span",
            { className: "hand-indicator", role: "img", ariaLabel: handText, title: handText, dataset: { position: String(handPosition ?? "") } },
            icon("hand"),
            handPosition ? h("span", { className: "hand-position" }, String(handPosition)) : null,
          ),
        );
      }
      if (mic) {
        parts.push(h("span", { className: "mic-indicator", role: "img", ariaLabel: MIC_LABEL[mic], title: MIC_LABEL[mic], dataset: { state: mic } }, icon(MIC_ICON[mic])));
      }
      indicators.replaceChildren(...parts);
    }

    // inline queue actions (approve / decline / invite) for hosts and moderators
    const actions = queueActions(client, p);
    const actionKey = actions.map((a) => a.action).join(",");
    const box = row.querySelector(".row-actions");
    if (box.dataset.key !== actionKey) {
      box.dataset.key = actionKey;
      box.replaceChildren(
        ...actions.map((a) =>
          h(
            "button",
            { type: "button", className: a.primary ? "small primary" : "small secondary", dataset: { action: a.action }, ariaLabel: `${a.label}: ${p.name}`, onClick: a.run },
            a.label,
          ),
        ),
      );
    }
    const menu = row.querySelector('[data-action="person-menu"]');
    menu.hidden = !isModerator(you);
    menu.style.visibility = self ? "hidden" : ""; // keeps the column, so icons line up
  }
}
