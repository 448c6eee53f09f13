// Host and moderator controls: the per-person menu, the inline queue buttons and the
// room-wide (bulk) menu. Every item sends one protocol command; the server decides and
// the page follows the resulting participant updates.
import { confirmDialog, toast } from "./ui.js";
import { isModerator, mayChangeRightsOf, mayGrantRole } from "./rules.js";

/** Run a command; failures become a toast (the server's message is written for people). */
export async function run(client, type, fields = {}) {
  try {
    await client.command(type, fields);
    return true;
  } catch (error) {
    if (error.code !== "not_connected") toast(error.message || String(error), { kind: "command-failed", tone: "alert" });
    return false;
  }
}

/** The current entry for a participant (menus are built on open, but commands run later). */
function fresh(client, target) {
  return client.participants.get(target.participant_id) || target;
}

const withRevision = (client, target) => ({ target: target.participant_id, revision: fresh(client, target).revision });

/** Inline buttons for someone waiting: approve/decline a request, invite, lower a hand. */
export function queueActions(client, target) {
  const you = client.you;
  if (!isModerator(you) || target.participant_id === you.participant_id) return [];
  const actions = [];
  if (target.status === "requested") {
    actions.push(
      { action: "approve-request", label: "Bring to stage", primary: true, run: () => run(client, "approve_request", withRevision(client, target)) },
      { action: "decline-request", label: "Decline", run: () => run(client, "decline_request", withRevision(client, target)) },
    );
  } else if (target.status === "viewer" && target.hand != null && !target.viewer_only) {
    actions.push({ action: "invite", label: "Invite", primary: true, run: () => run(client, "invite", withRevision(client, target)) });
  }
  if (target.hand != null) {
    actions.push({ action: "lower-hand", label: "Lower hand", run: () => run(client, "lower_hand", { target: target.participant_id }) });
  }
  return actions;
}

/** The per-person menu for hosts and moderators (empty for everyone else). */
export function personItems(client, target) {
  const you = client.you;
  if (!isModerator(you)) return [];
  const self = target.participant_id === you.participant_id;
  const id = target.participant_id;
  const items = [];
  const add = (action, label, fn, extra = {}) => items.push({ action, label, run: fn, ...extra });

  // the stage
  if (target.status === "requested") {
    add("approve-request", "Bring to stage", () => run(client, "approve_request", withRevision(client, target)));
    add("decline-request", "Decline request", () => run(client, "decline_request", withRevision(client, target)));
  } else if (target.status === "viewer" && !self && !target.viewer_only) {
    add("invite", "Invite to stage", () => run(client, "invite", withRevision(client, target)));
  } else if (target.status === "invited") {
    add("revoke-invitation", "Revoke invitation", () => run(client, "revoke_invitation", withRevision(client, target)));
  }
  if (!self && (target.status === "on_stage" || target.status === "queued")) {
    add("remove-from-stage", target.status === "queued" ? "Remove from the seat queue" : "Remove from stage", () =>
      run(client, "remove_from_stage", withRevision(client, target)),
    );
  }
  // devices: nobody can turn someone else's on; muting yourself is the toolbar's job
  if (!self) {
    for (const [device, noun, off] of [["mic", "microphone", "Mute"], ["camera", "camera", "Turn off"]]) {
      const state = target[device];
      if (target.on_stage && state === "on") add(`mute-${device}`, `${off} ${noun}`, () => run(client, "mute", { target: id, device }));
      if (target.on_stage && state !== "locked") {
        add(`lock-${device}`, `Lock ${noun} off`, () => run(client, "mute", { target: id, device, lock: true }));
      }
      if (state === "locked") add(`unlock-${device}`, `Unlock ${noun}`, () => run(client, "unlock", { target: id, device }));
    }
  }
  if (target.hand != null) add("lower-hand", "Lower hand", () => run(client, "lower_hand", { target: id }));

  // rights: never upward, never yourself
  if (mayChangeRightsOf(you, target)) {
    items.push({ separator: true });
    items.push({ heading: "Role" });
    for (const role of ["host", "moderator", "participant"]) {
      if (!mayGrantRole(you, role)) continue;
      items.push({
        action: `set-role-${role}`,
        label: { host: "Host", moderator: "Moderator", participant: "Participant" }[role],
        checked: target.role === role,
        run: () => target.role !== role && run(client, "set_role", { target: id, role }),
      });
    }
    items.push({ separator: true });
    add("set-speaker", target.speaker ? "Remove speaker" : "Set as speaker", () =>
      run(client, "set_speaker", { target: id, speaker: !target.speaker }),
    );
    if (!isModerator(target)) {
      add("allow-present", target.can_present ? "Stop allowing presenting" : "Allow presenting", () =>
        run(client, "set_permission", { target: id, permission: "present", granted: !target.can_present }),
      );
    }
    add(
      "kick",
      "Remove from room",
      async () => {
        const sure = await confirmDialog(`Remove ${target.name} from the room? They cannot come back to it.`, {
          confirm: "Remove from room",
          danger: true,
        });
        if (sure) await run(client, "kick", { target: id });
      },
      { danger: true },
    );
  }
  return trimSeparators(items);
}

function trimSeparators(items) {
  const out = items.filter((item, i) => !(item.separator && (i === 0 || items[i - 1].separator)));
  while (out.length && out[out.length - 1].separator) out.pop();
  return out;
}

/** The room-wide menu: stage access, room mode, mute all, cameras off, clear hands, poll. */
export function roomItems(client, { onNewPoll }) {
  const policy = client.policy || {};
  const items = [{ heading: "Stage access" }];
  for (const [access, label] of [["everyone", "Everyone on stage"], ["request", "Join by request"], ["invite_only", "Invite only"]]) {
    items.push({
      action: `stage-access-${access}`,
      label,
      checked: policy.stage_access === access,
      run: () => policy.stage_access !== access && run(client, "set_stage_access", { access }),
    });
  }
  items.push({ heading: "Room mode" });
  for (const [mode, label] of [["interactive", "Interactive room"], ["panel", "Panel room (invited speakers only)"]]) {
    items.push({
      action: `room-mode-${mode}`,
      label,
      checked: policy.mode === mode,
      run: () => policy.mode !== mode && run(client, "set_room_mode", { mode }),
    });
  }
  items.push({ separator: true });
  items.push({ action: "mute-all", label: "Mute all microphones", run: () => run(client, "mute_all", { device: "mic" }) });
  items.push({ action: "cameras-off", label: "Turn off all cameras", run: () => run(client, "mute_all", { device: "camera" }) });
  items.push({ action: "clear-hands", label: "Clear raised hands", run: () => run(client, "lower_all_hands") });
  items.push({ separator: true });
  items.push({ action: "new-poll", label: "Create a quick poll", run: onNewPoll });
  return items;
}
