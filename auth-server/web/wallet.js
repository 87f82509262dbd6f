// The ticket holder's wallet: log in or register, list my events and tickets (GET /api/me),
// get a ticket for an event I am on the roster of, and show its door code.
//
// A ticket's TOTP secret comes once, in the answer to POST /api/tickets; the wallet keeps it in
// this browser's localStorage (per account and ticket) and computes the current code from it
// (totp.js). The QR code it shows reads `TKT:<ticket id>:<code>`, what /door's scanner expects;
// the signed e-ticket QR code is for doors that check offline.
//
// Watch: the ticket mints a short-lived playback token for one of its event's streams (POST
// /api/playback-tokens), and hls.js (vendored) plays the player URL the server answers with,
// adding the token to every playlist and segment request so that each is checked.

import { api, el, status, loginForms, whoami, accountBar, when } from "/assets/api.js";
import { codeAt, stepOf, STEP_SECONDS } from "/assets/totp.js";

const app = document.getElementById("app");
let timer = null;

const secretKey = (accountId, ticketId) => `wallet:${accountId}:ticket:${ticketId}`;

function qrImage(text, label) {
  // qrcode-generator (vendored): type 0 picks the smallest version that fits; M correction.
  const qr = window.qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return el("img", { class: "qr", src: qr.createDataURL(6, 4), alt: label, width: 240, height: 240 });
}

async function start() {
  if (timer) clearInterval(timer);
  app.replaceChildren();
  let me;
  try {
    me = await whoami();
  } catch (err) {
    status(err.message, "error");
    return;
  }
  if (!me) {
    loginForms(app, { register: true, done: start });
    return;
  }
  app.append(accountBar(me, start));
  const mine = me.events.filter((e) => e.attendee || e.tickets.length > 0);
  if (mine.length === 0) {
    app.append(el("p", { class: "card muted" },
      "You are on no event's roster yet. An organiser adds you; then your event shows here."));
    return;
  }
  const codes = [];
  for (const entry of mine) app.append(eventCard(me, entry, codes));
  const tick = () => codes.forEach((update) => update());
  tick();
  timer = setInterval(tick, 1000);
}

function eventCard(me, { event, attendee, tickets }, codes) {
  const live = tickets.find((t) => !t.revoked_at);
  const card = el("section", { class: "card ticket", "data-event": event.id },
    el("h2", {}, event.title),
    el("p", { class: "muted" }, `${when(event.starts_at)} – ${when(event.ends_at)}`));
  if (!live) {
    if (!attendee) {
      card.append(el("p", { class: "muted" }, "You are no longer on this event's roster."));
      return card;
    }
    const get = el("button", { type: "button" }, "Get my ticket");
    get.addEventListener("click", async () => {
      get.disabled = true;
      try {
        const issued = await api("POST", "/api/tickets", { event_id: event.id });
        localStorage.setItem(secretKey(me.account.id, issued.ticket_id), issued.secret);
        status(`Ticket ${issued.ticket_id} issued. Its secret is kept in this browser only.`, "ok");
        start();
      } catch (err) {
        get.disabled = false;
        status(err.message, "error");
      }
    });
    card.append(get);
    return card;
  }
  card.append(el("p", {}, "Ticket ", el("strong", { class: "ticket-id" }, `#${live.id}`),
    live.checked_in_at ? ` · checked in ${when(live.checked_in_at)}` : ""));
  const secret = localStorage.getItem(secretKey(me.account.id, live.id));
  if (!secret) {
    card.append(el("p", { class: "warn" },
      "This ticket's secret is not in this browser: it is shown only once, where the ticket " +
      "was issued. Use that browser, or ask an organiser to revoke the ticket so you can get " +
      "a new one. The e-ticket below still works at doors that check e-tickets."));
  } else {
    const code = el("output", { class: "code", "aria-label": "Door code" }, "······");
    const qrBox = el("div", { class: "qr-box" });
    const left = el("progress", { max: STEP_SECONDS, value: STEP_SECONDS, "aria-label": "Seconds until the next code" });
    card.append(el("div", { class: "door-code" }, qrBox, code, left));
    let shown = null;
    codes.push(async () => {
      const now = Date.now();
      left.value = STEP_SECONDS - ((now / 1000) % STEP_SECONDS);
      const step = stepOf(now);
      if (step === shown) return;
      shown = step;
      try {
        const current = await codeAt(secret, step);
        code.textContent = current;
        code.dataset.step = String(step);
        qrBox.replaceChildren(qrImage(`TKT:${live.id}:${current}`, `QR code of ticket ${live.id}, code ${current}`));
      } catch (err) {
        status(err.message, "error");
      }
    });
  }
  const eticketButton = el("button", { type: "button", class: "secondary" }, "Show e-ticket (offline doors)");
  const eticketBox = el("div", { class: "eticket", "aria-live": "polite" });
  eticketButton.addEventListener("click", async () => {
    try {
      const signed = await api("GET", `/api/tickets/${live.id}/signed`);
      eticketBox.replaceChildren(
        el("h3", {}, "E-ticket"),
        el("img", { class: "qr", src: signed.qr_png_url, alt: `Signed e-ticket of ticket ${live.id}`, width: 240, height: 240 }),
        el("p", { class: "muted" }, `Valid until ${when(signed.expires_at)}.`));
      eticketButton.hidden = true;
    } catch (err) {
      status(err.message, "error");
    }
  });
  card.append(eticketButton, eticketBox, watchBox(live, event));
  return card;
}

/** One Watch button per stream the event names (patterns like `conf/*` name no stream). */
function watchBox(ticket, event) {
  const named = event.streams.filter((s) => !/[*?[]/.test(s));
  const box = el("div", { class: "watch" }, el("h3", {}, "Watch"));
  if (named.length === 0) {
    box.append(el("p", { class: "muted" }, "This event's streams have no fixed name to play here."));
    return box;
  }
  const video = el("video", { class: "player", controls: true, muted: true, playsinline: true, hidden: true });
  for (const stream of named) {
    const button = el("button", { type: "button", class: "secondary", "data-stream": stream }, `Watch ${stream}`);
    button.addEventListener("click", () => play(ticket, stream, video));
    box.append(button, " ");
  }
  box.append(video);
  return box;
}

let player = null;

async function play(ticket, stream, video) {
  let minted;
  try {
    minted = await api("POST", "/api/playback-tokens", { ticket_id: ticket.id, streams: [stream] });
  } catch (err) {
    status(err.message, "error");
    return;
  }
  if (player) player.destroy();
  const source = new URL(minted.player_url, location.href);
  const withToken = (url) => {
    const next = new URL(url, source);
    if (!next.searchParams.has("token")) next.searchParams.set("token", minted.token);
    return next.toString();
  };
  video.hidden = false;
  if (window.Hls && window.Hls.isSupported()) {
    player = new window.Hls({
      // A worker would start from a blob: URL, which the Content-Security-Policy refuses.
      enableWorker: false,
      xhrSetup(xhr, url) {
        xhr.open("GET", withToken(url), true);
      },
    });
    player.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) status(`The stream stopped: ${data.details}`, "error");
    });
    player.loadSource(source.toString());
    player.attachMedia(video);
  } else {
    // Safari plays HLS itself; its segment requests carry no token, so this works only where
    // segments are not checked one by one.
    video.src = source.toString();
  }
  try {
    await video.play();
  } catch (err) {
    status(`Cannot start the video: ${err.message}`, "error");
  }
}

start();
