// Chat and quick polls: everyone chats and votes; hosts and moderators create and close
// polls and see results live (everyone sees them once a poll is closed).
import { h, hue, icon } from "./ui.js";
import { isModerator } from "./rules.js";
import { run } from "./moderation.js";

const MAX_MESSAGES = 500;

export class ChatPanel {
  constructor({ root, client, onUnread }) {
    this.client = client;
    this.onUnread = onUnread;
    this.list = h("ol", { className: "messages", ariaLabel: "Chat messages", ariaLive: "polite", ariaRelevant: "additions" });
    this.empty = h("p", { className: "panel-note" }, "No messages yet. Say hello!");
    this.input = h("input", { type: "text", id: "chat-input", maxLength: 2000, placeholder: "Write a message", ariaLabel: "Message", autocomplete: "off" });
    const send = h("button", { type: "submit", className: "icon-button primary", ariaLabel: "Send message", dataset: { action: "send-chat" } }, icon("send"));
    this.form = h("form", { className: "chat-form" }, this.input, send);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    root.replaceChildren(this.empty, this.list, this.form);
    client.addEventListener("chat", (e) => this.add(e.detail));
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    if (await run(this.client, "chat", { text })) this.input.value = "";
  }

  add(message) {
    const mine = message.participant_id === this.client.participantId;
    const time = new Date(message.at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    this.list.append(
      h(
        "li",
        { className: `message${mine ? " mine" : ""}`, dataset: { participant: message.participant_id } },
        h("span", { className: "message-meta" }, h("span", { className: "message-name", style: { "--hue": String(hue(message.name)) } }, mine ? "You" : message.name), h("time", {}, time)),
        h("span", { className: "message-text" }, message.text),
      ),
    );
    while (this.list.children.length > MAX_MESSAGES) this.list.firstElementChild.remove();
    this.empty.hidden = true;
    this.list.scrollTop = this.list.scrollHeight;
    if (!mine) this.onUnread();
  }
}

export class PollsPanel {
  constructor({ root, client, onNewPoll }) {
    this.client = client;
    this.voted = new Map(); // poll id -> option index (the server does not tell us)
    this.list = h("div", { className: "polls" });
    this.empty = h("p", { className: "panel-note" }, "No polls yet.");
    this.question = h("input", { type: "text", id: "poll-question", maxLength: 300, required: true, autocomplete: "off" });
    this.options = h("textarea", { id: "poll-options", rows: 4, required: true, placeholder: "Yes\nNo" });
    this.error = h("p", { className: "form-error", role: "alert" });
    this.form = h(
      "form",
      { className: "poll-form", hidden: true, ariaLabel: "Create a poll" },
      h("h3", {}, "New quick poll"),
      h("label", { htmlFor: "poll-question" }, "Question"),
      this.question,
      h("label", { htmlFor: "poll-options" }, "Options, one per line (2 to 10)"),
      this.options,
      this.error,
      h(
        "div",
        { className: "dialog-actions" },
        h("button", { type: "button", className: "secondary", onClick: () => this.closeForm() }, "Cancel"),
        h("button", { type: "submit", className: "primary", dataset: { action: "create-poll" } }, "Start poll"),
      ),
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.create();
    });
    this.newButton = h("button", { type: "button", className: "secondary", dataset: { action: "new-poll" }, onClick: onNewPoll }, icon("poll"), " New poll");
    root.replaceChildren(h("div", { className: "panel-tools" }, this.newButton), this.form, this.empty, this.list);
  }

  openForm() {
    this.form.hidden = false;
    this.question.focus();
  }

  closeForm() {
    this.form.hidden = true;
    this.form.reset();
    this.error.textContent = "";
  }

  async create() {
    const question = this.question.value.trim();
    const options = this.options.value.split("\n").map((o) => o.trim()).filter(Boolean);
    if (!question || options.length < 2 || options.length > 10) {
      this.error.textContent = "Write a question and 2 to 10 options.";
      return;
    }
    if (await run(this.client, "create_poll", { question, options })) this.closeForm();
  }

  async vote(poll, option) {
    if (await run(this.client, "vote", { poll_id: poll.poll_id, option })) {
      this.voted.set(poll.poll_id, option);
      this.render();
    }
  }

  render() {
    const client = this.client;
    const moderator = isModerator(client.you);
    this.newButton.hidden = !moderator;
    if (!moderator) this.form.hidden = true;
    const polls = [...client.polls.values()].reverse();
    // Rebuilt only when something shown changed (render runs on every speaking change).
    const key = JSON.stringify([moderator, polls, [...this.voted]]);
    if (key === this.shown) return;
    this.shown = key;
    this.empty.hidden = polls.length > 0;
    const focusedId = document.activeElement?.closest?.(".poll")?.dataset.poll;
    this.list.replaceChildren(...polls.map((poll) => this.card(poll, moderator)));
    if (focusedId) this.list.querySelector(`.poll[data-poll="${CSS.escape(focusedId)}"] button:not(:disabled)`)?.focus();
  }

  card(poll, moderator) {
    const voted = this.voted.get(poll.poll_id);
    const results = poll.results;
    const total = results ? results.reduce((a, b) => a + b, 0) : 0;
    const options = poll.options.map((text, i) => {
      const count = results ? results[i] : null;
      const share = results && total ? Math.round((count / total) * 100) : 0;
      const canVote = !poll.closed && voted === undefined;
      return h(
        "li",
        { className: `poll-option${voted === i ? " chosen" : ""}`, dataset: { option: String(i) } },
        h(
          "button",
          { type: "button", className: "poll-choice", disabled: !canVote, dataset: { action: "vote" }, ariaLabel: `Vote for ${text}`, ariaPressed: String(voted === i), onClick: () => this.vote(poll, i) },
          results ? h("span", { className: "poll-bar", ariaHidden: "true", style: { width: `${share}%` } }) : null,
          h("span", { className: "poll-text" }, text),
          results ? h("span", { className: "poll-count" }, `${count} · ${share}%`) : null,
        ),
      );
    });
    return h(
      "article",
      { className: `poll${poll.closed ? " closed" : ""}`, dataset: { poll: poll.poll_id, closed: String(poll.closed) } },
      h("h3", {}, poll.question),
      h("p", { className: "poll-state" }, poll.closed ? `Closed · ${total} vote${total === 1 ? "" : "s"}` : voted !== undefined ? "Thanks, your vote is in." : "Choose one answer."),
      h("ol", { className: "poll-options" }, options),
      moderator && !poll.closed
        ? h("button", { type: "button", className: "secondary small", dataset: { action: "close-poll" }, onClick: () => run(this.client, "close_poll", { poll_id: poll.poll_id }) }, "Close poll")
        : null,
    );
  }
}
