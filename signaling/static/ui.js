// Small DOM helpers: an element builder, inline SVG icons, toasts, menus and confirm/choice dialogs.

/**
 * h("button", {className, dataset, ariaLabel, onClick, ...}, ...children)
 * `aria*` and `role` become attributes, `on*` functions become listeners, `dataset`
 * fills data-*, anything else is set as a property.
 */
export function h(tag, props = {}, ...children) {
  const element = tag === "svg" || tag === "path" ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(element.style, value);
    else if (key.startsWith("aria") || key === "role") {
      const name = key === "role" ? "role" : `aria-${key.slice(4).toLowerCase()}`;
      if (value !== false) element.setAttribute(name, String(value));
    } else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "muted") {
      element.muted = value;
      if (value) element.setAttribute("muted", "");
    } else element[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const MIC = '<rect x="9" y="2" width="6" height="12" rx="3"/><path d="M5 10v1a7 7 0 0 0 14 0v-1"/><path d="M12 18v4"/><path d="M8 22h8"/>';
const CAMERA = '<rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10.5 22 7v10l-6-3.5z"/>';
const SLASH = '<path d="M3 3l18 18"/>';

const ICONS = {
  mic: MIC,
  micOff: MIC + SLASH,
  camera: CAMERA,
  cameraOff: CAMERA + SLASH,
  lock: '<rect x="4" y="11" width="16" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
  hand: '<path d="M18 11V6a2 2 0 0 0-4 0v5"/><path d="M14 10V4a2 2 0 0 0-4 0v6"/><path d="M10 10.5V6a2 2 0 0 0-4 0v8"/><path d="M18 8a2 2 0 1 1 4 0v6a8 8 0 0 1-8 8h-2c-2.8 0-4.5-.9-6-2.3l-3.6-3.6a2 2 0 0 1 2.8-2.8L7 15"/>',
  screen: '<rect x="2" y="3" width="20" height="14" rx="2"/><path d="M8 21h8"/><path d="M12 17v4"/><path d="M9 10l3-3 3 3"/><path d="M12 7v6"/>',
  chat: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
  people: '<path d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2"/><circle cx="9" cy="7" r="4"/><path d="M22 21v-2a4 4 0 0 0-3-3.9"/><path d="M16 3.1a4 4 0 0 1 0 7.8"/>',
  settings: '<path d="M4 21v-7"/><path d="M4 10V3"/><path d="M12 21v-9"/><path d="M12 8V3"/><path d="M20 21v-5"/><path d="M20 12V3"/><path d="M1 14h6"/><path d="M9 8h6"/><path d="M17 16h6"/>',
  more: '<circle cx="5" cy="12" r="1.2"/><circle cx="12" cy="12" r="1.2"/><circle cx="19" cy="12" r="1.2"/>',
  leave: '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><path d="M16 17l5-5-5-5"/><path d="M21 12H9"/>',
  stage: '<path d="M12 3l2.6 5.4 5.9.8-4.3 4.1 1 5.9L12 16.4l-5.2 2.8 1-5.9-4.3-4.1 5.9-.8z"/>',
  close: '<path d="M18 6 6 18"/><path d="M6 6l12 12"/>',
  poll: '<path d="M4 20V10"/><path d="M10 20V4"/><path d="M16 20v-7"/><path d="M22 20H2"/>',
  search: '<circle cx="11" cy="11" r="7"/><path d="M21 21l-4.3-4.3"/>',
  shield: '<path d="M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z"/>',
  send: '<path d="M22 2 11 13"/><path d="M22 2l-7 20-4-9-9-4z"/>',
  check: '<path d="M20 6 9 17l-5-5"/>',
};

/** An inline SVG icon (decorative: the button or label around it carries the name). */
export function icon(name, className = "") {
  const span = document.createElement("span");
  span.className = `icon ${className}`.trim();
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" focusable="false">${ICONS[name] || ""}</svg>`;
  return span;
}

export function setIcon(element, name) {
  const fresh = icon(name, element.className.replace(/\bicon\b/, "").trim());
  element.replaceWith(fresh);
  return fresh;
}

export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "?";
  const first = (word) => [...word][0];
  const letters = words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : first(words[0]);
  return letters.toUpperCase();
}

/** A stable hue per name, for avatars. */
export function hue(text) {
  let hash = 0;
  for (const ch of String(text)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

// -- toasts -----------------------------------------------------------------------------------
/** Show a notification; `kind` goes to data-kind for tests and styling. */
export function toast(message, { kind = "info", timeout = 7000, action = null, tone = "info" } = {}) {
  const region = document.getElementById("toasts");
  const close = h("button", { type: "button", className: "icon-button toast-close", ariaLabel: "Dismiss notification" }, icon("close"));
  const item = h(
    "div",
    { className: `toast tone-${tone}`, dataset: { kind }, role: tone === "alert" ? "alert" : "status" },
    h("p", {}, message),
    action ? h("button", { type: "button", className: "toast-action", onClick: () => { action.run(); item.remove(); } }, action.label) : null,
    close,
  );
  close.addEventListener("click", () => item.remove());
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

// -- menus -------------------------------------------------------------------------------------
let openMenuState = null;

export function closeMenu({ focus = true } = {}) {
  if (!openMenuState) return;
  const { menu, anchor, onDocument } = openMenuState;
  openMenuState = null;
  menu.remove();
  document.removeEventListener("pointerdown", onDocument, true);
  anchor.setAttribute("aria-expanded", "false");
  if (focus && anchor.isConnected) anchor.focus();
}

/**
 * Open a menu under `anchor`. Items: {label, run, action, danger, checked, disabled}
 * or {heading} or {separator: true}. Keyboard: arrows, Home/End, Escape, Tab closes.
 */
export function openMenu(anchor, items, { label = "Actions" } = {}) {
  const wasOpen = openMenuState && openMenuState.anchor === anchor;
  closeMenu({ focus: false });
  if (wasOpen) return;
  const menu = h("div", { className: "menu", role: "menu", ariaLabel: label });
  for (const item of items) {
    if (item.separator) menu.append(h("div", { className: "menu-separator", role: "separator" }));
    else if (item.heading) menu.append(h("div", { className: "menu-heading", role: "presentation" }, item.heading));
    else {
      const isRadio = item.checked !== undefined;
      const button = h(
        "button",
        {
          type: "button",
          className: `menu-item${item.danger ? " danger" : ""}`,
          role: isRadio ? "menuitemradio" : "menuitem",
          ariaChecked: isRadio ? String(Boolean(item.checked)) : undefined,
          disabled: Boolean(item.disabled),
          tabIndex: -1,
          dataset: { action: item.action || "" },
        },
        isRadio ? h("span", { className: "menu-check" }, item.checked ? icon("check") : "") : null,
        item.label,
      );
      button.addEventListener("click", () => {
        closeMenu();
        item.run();
      });
      menu.append(button);
    }
  }
  document.body.append(menu);
  const rect = anchor.getBoundingClientRect();
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  let left = Math.min(rect.left, window.innerWidth - width - 8);
  let top = rect.bottom + 4;
  if (top + height > window.innerHeight - 8) top = Math.max(8, rect.top - height - 4);
  left = Math.max(8, left);
  Object.assign(menu.style, { left: `${left}px`, top: `${top}px` });
  const buttons = () => [...menu.querySelectorAll("button:not(:disabled)")];
  menu.addEventListener("keydown", (e) => {
    const list = buttons();
    const index = list.indexOf(document.activeElement);
    if (e.key === "ArrowDown") list[(index + 1) % list.length]?.focus();
    else if (e.key === "ArrowUp") list[(index - 1 + list.length) % list.length]?.focus();
    else if (e.key === "Home") list[0]?.focus();
    else if (e.key === "End") list[list.length - 1]?.focus();
    else if (e.key === "Escape") closeMenu();
    else if (e.key === "Tab") closeMenu({ focus: false });
    else return;
    e.preventDefault();
  });
  const onDocument = (e) => {
    if (!menu.contains(e.target) && !anchor.contains(e.target)) closeMenu({ focus: false });
  };
  document.addEventListener("pointerdown", onDocument, true);
  anchor.setAttribute("aria-expanded", "true");
  openMenuState = { menu, anchor, onDocument };
  buttons()[0]?.focus();
}

/** A button that opens a menu built when it is opened (so it always shows the current state). */
export function menuButton({ label, className = "icon-button", iconName = "more", text = null, action, items }) {
  const button = h(
    "button",
    { type: "button", className, ariaLabel: text ? undefined : label, title: label, ariaHaspopup: "menu", ariaExpanded: "false", dataset: { action } },
    icon(iconName),
    text ? h("span", { className: "label" }, text) : null,
  );
  button.addEventListener("click", () => openMenu(button, items(), { label }));
  return button;
}

// -- confirm -----------------------------------------------------------------------------------
export function confirmDialog(message, { confirm = "OK", danger = false } = {}) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", className: danger ? "danger" : "primary", dataset: { action: "confirm" } }, confirm);
    const no = h("button", { type: "button", className: "secondary", dataset: { action: "cancel" } }, "Cancel");
    const dialog = h("dialog", { className: "confirm", ariaLabel: confirm }, h("p", {}, message), h("div", { className: "dialog-actions" }, no, yes));
    const finish = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    yes.addEventListener("click", () => finish(true));
    no.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/**
 * Ask which of several things to do: a modal with a title, a message and one button per
 * choice ({value, label, danger}), plus Cancel. Resolves the chosen value, or null.
 */
export function choiceDialog(title, message, choices) {
  return new Promise((resolve) => {
    const no = h("button", { type: "button", className: "secondary", dataset: { action: "cancel" } }, "Cancel");
    const buttons = choices.map((choice) =>
      h("button", { type: "button", className: choice.danger ? "danger" : "primary", dataset: { action: choice.value } }, choice.label),
    );
    const heading = h("h2", {}, title);
    const dialog = h("dialog", { className: "confirm choice", ariaLabel: title }, heading, h("p", {}, message), h("div", { className: "dialog-actions" }, no, ...buttons));
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    };
    dialog.addEventListener("close", () => finish(null)); // e.g. the room ended meanwhile
    buttons.forEach((button, i) => button.addEventListener("click", () => finish(choices[i].value)));
    no.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(null);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}
