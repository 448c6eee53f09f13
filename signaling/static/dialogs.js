// The "Set devices" dialog, also used as "Get ready to join the stage" before joining.
import { mountDevicePanel } from "./devices.js";
import { nerdStatsSwitch } from "./nerd-stats.js";

const $ = (selector) => document.querySelector(selector);

/**
 * Open the devices dialog. `mode` "settings": choose devices, Done. `mode` "ready": also
 * the microphone/camera switches for entering the stage, then "Join stage" or Cancel.
 * Resolves true when confirmed.
 */
export function openDevices(media, { mode = "settings" } = {}) {
  const dialog = $("#devices-dialog");
  if (dialog.open) return Promise.resolve(false);
  const ready = mode === "ready";
  dialog.dataset.mode = mode;
  $("#devices-title").textContent = ready ? "Get ready to join the stage" : "Set devices";
  $("#devices-lead").textContent = ready
    ? "Check your camera and microphone, then join. Your choices are saved in this browser."
    : "Your choices are saved in this browser and used when you join the stage.";
  $("#devices-cancel").hidden = !ready;
  const ok = $("#devices-ok");
  ok.textContent = ready ? "Join stage" : "Done";
  ok.dataset.action = ready ? "confirm-join-stage" : "devices-done";
  const panel = mountDevicePanel($("#devices-body"), media, { toggles: ready, idPrefix: "settings" });
  // Display choices belong to Settings, not to the check before joining the stage.
  $("#display-settings").replaceChildren(...(ready ? [] : [nerdStatsSwitch("settings")]));
  dialog.returnValue = "";
  dialog.showModal();
  ok.focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        panel.destroy();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
  });
}
