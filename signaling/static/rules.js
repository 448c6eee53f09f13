// What the page offers, derived from the room policy, your status and roles. The server
// decides (signaling/permissions.py, signaling/stage/machine.py); these mirror its rules
// only so the page shows the buttons that will work.

const RANK = { participant: 0, moderator: 1, host: 2 };

export const isModerator = (p) => Boolean(p) && (p.role === "host" || p.role === "moderator");

/** The full view (docs/protocol.md, Audiences): news of everyone, not just counts. */
export const inFullView = (p) => isModerator(p) || (Boolean(p) && p.status !== "viewer");

export function maySelfJoin(you, policy) {
  if (!you || !policy || you.viewer_only) return false;
  if (isModerator(you) || you.speaker) return true;
  return policy.mode === "interactive" && policy.stage_access === "everyone";
}

export function mayRequest(you, policy) {
  if (!you || !policy || you.viewer_only || maySelfJoin(you, policy)) return false;
  return policy.mode === "interactive" && policy.stage_access === "request";
}

/** The one stage button in the toolbar: {action, label} or null. */
export function stageAction(you, policy) {
  if (!you) return null;
  switch (you.status) {
    case "on_stage":
      return { action: "leave-stage", label: "Leave stage" };
    case "queued":
      return { action: "leave-stage", label: "Leave the queue" };
    case "requested":
      return { action: "cancel-request", label: "Cancel request" };
    case "invited":
      return { action: "show-invitation", label: "Answer invitation" };
    default:
      if (maySelfJoin(you, policy)) return { action: "join-stage", label: "Join stage" };
      if (mayRequest(you, policy)) return { action: "request-stage", label: "Ask to join stage" };
      return null;
  }
}

export function mayChangeRightsOf(actor, target) {
  return isModerator(actor) && actor.participant_id !== target.participant_id && RANK[actor.role] >= RANK[target.role];
}

export const mayGrantRole = (actor, role) => isModerator(actor) && RANK[actor.role] >= RANK[role];

/** Ending the room for everyone is the host's alone (permissions.may_end_room). */
export const mayEndRoom = (p) => Boolean(p) && p.role === "host";

export const ROLE_LABEL = { host: "Host", moderator: "Moderator", participant: "Participant" };

export const ACCESS_LABEL = {
  everyone: "Everyone can join the stage",
  request: "Join the stage by request",
  invite_only: "Stage by invitation only",
};

export const MIC_LABEL = {
  on: "Microphone on",
  off: "Microphone off",
  muted: "Muted by a moderator",
  locked: "Microphone locked by a moderator",
  speaking: "Speaking",
};

/**
 * Names as shown, by participant id: "(you)" for yourself, and "session n" when one
 * identity is in the room more than once (two tabs or devices), so the rows differ.
 * Sessions are numbered by participant id, so everyone numbers them alike.
 */
export function displayNames(participants, selfId) {
  const byIdentity = new Map();
  for (const p of participants) byIdentity.set(p.identity, [...(byIdentity.get(p.identity) || []), p]);
  const names = new Map();
  for (const group of byIdentity.values()) {
    group.sort((a, b) => (a.participant_id < b.participant_id ? -1 : 1));
    group.forEach((p, i) => {
      const notes = [];
      if (p.participant_id === selfId) notes.push("you");
      if (group.length > 1) notes.push(`session ${i + 1}`);
      names.set(p.participant_id, notes.length ? `${p.name} (${notes.join(", ")})` : p.name);
    });
  }
  return names;
}

/** Mic state as shown: speaking wins over "on". */
export function micState(p) {
  if (!p || !p.on_stage) return "off";
  if (p.mic === "on" && p.speaking) return "speaking";
  return p.mic || "off";
}
