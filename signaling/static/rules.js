// What the page offers, derived from the room policy, your status and roles. The server
// decides (signaling/permissions.py, signaling/stage/machine.py); these mirror its rules
// only so the page shows the buttons that will work.

const RANK = { participant: 0, moderator: 1, host: 2 };

export const isModerator = (p) => Boolean(p) && (p.role === "host" || p.role === "moderator");

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

/** Mic state as shown: speaking wins over "on". */
export function micState(p) {
  if (!p || !p.on_stage) return "off";
  if (p.mic === "on" && p.speaking) return "speaking";
  return p.mic || "off";
}
