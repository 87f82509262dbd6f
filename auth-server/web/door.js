// The door: an agent logs in, picks one of the events they work (GET /api/me), and checks
// tickets in, by typed ticket id and code or by scanning a wallet's QR code with the camera.
// A wallet's QR code reads `TKT:<ticket id>:<code>` (POST /api/tickets/verify); anything else
// scanned is taken for a signed e-ticket (POST /api/tickets/verify-signed).
//
// The answer fills the screen, green or red, with the holder's name or the reason; the count of
// entries accepted at this door for the event is kept in sessionStorage.

import { api, el, status, loginForms, whoami, accountBar, personName } from "/assets/api.js";

const app = document.getElementById("app");
const verdict = document.getElementById("verdict");
const REASONS = {
  ticket_not_found: "No such ticket",
  code_invalid: "Wrong code",
  code_reused: "Code already used",
  ticket_revoked: "Ticket revoked",
  event_not_started: "Event not started",
  event_over: "Event is over",
  already_checked_in: "Already checked in",
  other_event: "Ticket for another event",
  too_many_attempts: "Locked after wrong codes: ask an event admin",
};
let stopCamera = () => {};

async function start() {
  stopCamera();
  app.replaceChildren();
  let me;
  try {
    me = await whoami();
  } catch (err) {
    status(err.message, "error");
    return;
  }
  if (!me) {
    loginForms(app, { done: start });
    return;
  }
  app.append(accountBar(me, start));
  const events = me.events.filter((e) => e.agent || e.admin).map((e) => e.event);
  if (events.length === 0) {
    app.append(el("p", { class: "card muted" }, "You work the door of no event: an organiser adds you to an event's agents."));
    return;
  }
  const picker = el("select", { id: "event" }, events.map((e) => el("option", { value: e.id }, e.title)));
  const count = el("output", { id: "count", class: "count" });
  const showCount = () => { count.textContent = `${entries(picker.value)} entries`; };
  picker.addEventListener("change", showCount);
  showCount();
  app.append(el("section", { class: "card" },
    el("p", { class: "field" }, el("label", { for: "event" }, "Event"), picker),
    el("p", {}, "Admitted here: ", count)));

  const typed = el("form", { class: "card", "aria-labelledby": "typed-title" },
    el("h2", { id: "typed-title" }, "Type a code"),
    el("p", { class: "field" }, el("label", { for: "ticket" }, "Ticket number"),
      el("input", { id: "ticket", name: "ticket", inputmode: "numeric", pattern: "[0-9]+", required: true, autocomplete: "off" })),
    el("p", { class: "field" }, el("label", { for: "code" }, "Code"),
      el("input", { id: "code", name: "code", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6, required: true, autocomplete: "off" })),
    el("button", { type: "submit" }, "Check"));
  typed.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(typed);
    await check(Number(picker.value), { ticket_id: Number(form.get("ticket")), code: String(form.get("code")) });
    typed.reset();
  });

  const video = el("video", { class: "camera", muted: true, playsinline: true, hidden: true });
  const scan = el("button", { type: "button", id: "scan" }, "Scan with the camera");
  scan.addEventListener("click", () => startCamera(video, scan, picker));
  app.append(typed, el("section", { class: "card" }, el("h2", {}, "Scan a QR code"), scan, video));
}

const countKey = (eventId) => `door:entries:${eventId}`;
const entries = (eventId) => Number(sessionStorage.getItem(countKey(eventId)) || 0);

async function check(eventId, payload) {
  let answer;
  try {
    // The door's event goes with every check: a ticket of another event is refused by the
    // server before its code is used.
    const body = { ...payload, event_id: eventId };
    answer = "eticket" in payload
      ? await api("POST", "/api/tickets/verify-signed", body)
      : await api("POST", "/api/tickets/verify", body);
  } catch (err) {
    show(false, "Not checked", err.message);
    return;
  }
  if (!answer.valid) {
    show(false, REASONS[answer.reason] || answer.reason, `Ticket ${answer.ticket_id ?? ""}`);
    return;
  }
  sessionStorage.setItem(countKey(eventId), String(entries(eventId) + 1));
  document.getElementById("count").textContent = `${entries(eventId)} entries`;
  show(true, personName(answer.holder), answer.first_entry ? "Welcome" : "Re-entry");
}

function show(ok, title, detail) {
  verdict.className = `verdict ${ok ? "valid" : "invalid"}`;
  verdict.dataset.valid = String(ok);
  verdict.replaceChildren(
    el("p", { class: "verdict-mark", "aria-hidden": "true" }, ok ? "✓" : "✗"),
    el("p", { class: "verdict-title" }, title),
    el("p", { class: "verdict-detail" }, detail),
    el("p", { class: "verdict-hint" }, "Tap or press any key to continue"));
  verdict.hidden = false;
  verdict.focus();
  const hide = () => {
    verdict.hidden = true;
    verdict.removeEventListener("click", hide);
    verdict.removeEventListener("keydown", hide);
    clearTimeout(timeout);
  };
  const timeout = setTimeout(hide, 4000);
  verdict.addEventListener("click", hide);
  verdict.addEventListener("keydown", hide);
}

/** What a scanned QR code asks the API. */
function payloadOf(text) {
  const wallet = /^TKT:(\d+):(\d{6})$/.exec(text.trim());
  if (wallet) return { ticket_id: Number(wallet[1]), code: wallet[2] };
  return { eticket: text.trim() };
}

async function startCamera(video, button, picker) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    status(`No camera: ${err.message}`, "error");
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  button.hidden = true;
  await video.play();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let running = true;
  let last = { text: "", at: 0 };
  stopCamera = () => {
    running = false;
    stream.getTracks().forEach((track) => track.stop());
  };
  const frame = async () => {
    if (!running) return;
    if (video.readyState >= 2 && verdict.hidden) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      // The same code held in front of the camera is checked once, not every frame.
      if (found && (found.data !== last.text || Date.now() - last.at > 10000)) {
        last = { text: found.data, at: Date.now() };
        await check(Number(picker.value), payloadOf(found.data));
      }
    }
    setTimeout(frame, 150);
  };
  frame();
}

start();
