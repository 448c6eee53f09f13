// What the page offers, derived from the room policy, your status and roles. The server
// decides; the permission rules below are its own, served as data (/static/rules.json,
// made from signaling/command_table.py by signaling/client_rules.py), so the page shows
// the buttons that will work without a hand copy of the rules.

const RULES = await loadRules();

async function loadRules() {
  const response = await fetch(new URL("./rules.json", import.meta.url));
  if (!response.ok) throw new Error(`could not load the permission rules (HTTP ${response.status})`);
  const rules = await response.json();
  const senders = Object.fromEntries(Object.entries(rules.senders).map(([sender, keys]) => [sender, new Set(keys)]));
  return { ...rules, senders };
}

/** The lookup key of a person in a room, as the server writes it (client_rules._key). */
const ruleKey = (person, policy) =>
  [...RULES.keys.person.map((k) => person[k]), ...RULES.keys.policy.map((k) => policy[k])].map(String).join("/");

export const isModerator = (p) => Boolean(p) && RULES.moderators.includes(p.role);

/** The full view (docs/protocol.md, Audiences): news of everyone, not just counts. */
export const inFullView = (p) => isModerator(p) || (Boolean(p) && p.status !== "viewer");

/** Roles, labels, permissions and removal from the room: never upward, never yourself. */
export const mayChangeRightsOf = (actor, target) =>
  Boolean(actor) && actor.participant_id !== target.participant_id && RULES.rights[actor.role].includes(target.role);

export const mayGrantRole = (actor, role) => Boolean(actor) && RULES.grants[actor.role].includes(role);

/**
 * Whether the server would let `you` send a command of `type` (a protocol message type),
 * about `target` (a participant) and giving `role` where the command has them; the stage
 * state (a pending request, a seat) is the server's to judge.
 */
export function mayDo(type, you, policy, { target = null, role = null } = {}) {
  const rule = RULES.commands[type];
  if (!rule || !you || !policy) return false;
  const aboutOther = Boolean(target) && target.participant_id !== you.participant_id;
  const sender = aboutOther && rule.about_others ? rule.about_others : rule.sender;
  if (!RULES.senders[sender].has(ruleKey(you, policy))) return false;
  if (rule.rights && target && !mayChangeRightsOf(you, target)) return false;
  return !(rule.rights && role && !mayGrantRole(you, role));
}

export const maySelfJoin = (you, policy) => mayDo("join_stage", you, policy);

export const mayRequest = (you, policy) => mayDo("request_stage", you, policy);

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

/** Ending the room for everyone. */
export const mayEndRoom = (p, policy) => mayDo("end_room", p, policy);

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
