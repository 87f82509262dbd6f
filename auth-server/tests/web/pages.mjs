// The web pages in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// nothing is downloaded). Started by auth-server/tests/web.rs against a real server, with:
//   BASE       the server, http://127.0.0.1:PORT
//   API_KEY    a read-write management key, to set up events and rosters as an organiser would
//   WORK       a scratch directory (QR screenshots, the fake camera's y4m)
//   SHOTS      optional: a directory for screenshots of every page, phone and desktop widths
//   WATCH      the event's stream, live on the HLS server of PLAYER_URL_TEMPLATE; empty: no Watch
// Prints one JSON line per fact the Rust side checks (`{"wallet_code": ...}`); exits non-zero
// on the first failure.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import assert from "node:assert/strict";

const { BASE, API_KEY, WORK, SHOTS, WATCH } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PASSWORD = "a long test passphrase";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

function report(fact) {
  console.log(JSON.stringify(fact));
}

async function admin(method, path, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: { "X-API-Key": API_KEY, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A page that fails the test on any script error or Content-Security-Policy violation. */
async function strictPage(context, viewport) {
  const page = await context.newPage({ viewport });
  page.on("pageerror", (err) => { throw new Error(`page error: ${err.message}`); });
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/.test(message.text())) {
      throw new Error(`CSP: ${message.text()}`);
    }
  });
  return page;
}

/** Screenshots at both widths; a phone shot shows the whole page, unless it is `tall`. */
async function shot(page, name, { tall = false } = {}) {
  if (!SHOTS) return;
  for (const [width, viewport] of [["phone", PHONE], ["desktop", DESKTOP]]) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: width === "phone" && !tall });
  }
}

async function login(page, username) {
  await page.fill("#f-username", username);
  await page.fill("#f-password", PASSWORD);
  await page.click("form[aria-labelledby=login-title] button[type=submit]");
}

const launchArgs = ["--no-sandbox", "--disable-dev-shm-usage"];
const browser = await chromium.launch({ executablePath: CHROMIUM, args: launchArgs });
try {
  // --- set-up, as an organiser does it: an event on now, an agent on its door.
  const now = Date.now();
  const event = await admin("POST", "/api/events", {
    title: "RustConf Live",
    starts_at: new Date(now - 3600e3).toISOString(),
    ends_at: new Date(now + 3 * 3600e3).toISOString(),
    capacity: 100,
    streams: WATCH ? [WATCH, "backstage/*"] : ["backstage/*"],
    // Several entries per ticket: the camera check after the typed one is a second entry.
    single_entry: false,
  });
  const agent = await admin("POST", "/api/users", {
    user: { username: "door1", password: PASSWORD, email: "door1@example.org", first_name: "Door", last_name: "One" },
    role: "agent",
  });
  await admin("POST", `/api/events/${event.id}/agents`, { user_id: agent.id });

  // --- /docs renders the operations.
  {
    const context = await browser.newContext();
    const page = await strictPage(context, DESKTOP);
    await page.goto(`${BASE}/docs`);
    await page.waitForSelector(".opblock", { timeout: 20000 });
    const operations = await page.locator(".opblock").count();
    assert.ok(operations > 20, `only ${operations} operations`);
    assert.ok(await page.getByText("/api/me", { exact: true }).count() > 0, "/api/me is described");
    report({ docs_operations: operations });
    await shot(page, "docs", { tall: true });
    await context.close();
  }

  // --- /wallet: register, get on the roster, get a ticket, see the code.
  const walletContext = await browser.newContext();
  const wallet = await strictPage(walletContext, PHONE);
  await wallet.goto(`${BASE}/wallet`);
  await wallet.waitForSelector("#f-r-username");
  await shot(wallet, "wallet-login");
  await wallet.fill("#f-r-username", "alice");
  await wallet.fill("#f-r-email", "alice@example.org");
  await wallet.fill("#f-r-first", "Alice");
  await wallet.fill("#f-r-last", "Liddell");
  await wallet.fill("#f-r-password", PASSWORD);
  await wallet.click("form[aria-labelledby=register-title] button[type=submit]");
  await wallet.waitForSelector("text=You are on no event's roster yet");
  await admin("POST", `/api/events/${event.id}/users`, { username: "alice" });
  await wallet.reload();
  await wallet.click("text=Get my ticket");
  await wallet.waitForSelector("output.code[data-step]");
  const ticketId = Number((await wallet.textContent(".ticket-id")).replace("#", ""));
  const readCode = async () => wallet.evaluate(() => {
    const out = document.querySelector("output.code");
    return { code: out.textContent, step: Number(out.dataset.step) };
  });
  const secret = await wallet.evaluate((id) => {
    const key = Object.keys(localStorage).find((k) => k.endsWith(`:ticket:${id}`));
    return localStorage.getItem(key);
  }, ticketId);
  const first = await readCode();
  report({ wallet_code: first.code, step: first.step, secret, ticket_id: ticketId });
  await wallet.click("text=Show e-ticket (offline doors)");
  await wallet.waitForSelector(".eticket img.qr");
  await shot(wallet, "wallet");

  // --- /door in a second context: the typed code is accepted, then refused replayed.
  const doorContext = await browser.newContext();
  const door = await strictPage(doorContext, PHONE);
  await door.goto(`${BASE}/door`);
  await door.waitForSelector("#f-username");
  await login(door, "door1");
  await door.waitForSelector("#ticket");
  await shot(door, "door");
  const typeCode = async (code) => {
    await door.fill("#ticket", String(ticketId));
    await door.fill("#code", code);
    await door.click("form[aria-labelledby=typed-title] button[type=submit]");
    await door.waitForSelector("#verdict:not([hidden])");
    const answer = await door.evaluate(() => ({
      valid: document.getElementById("verdict").dataset.valid,
      title: document.querySelector(".verdict-title").textContent,
    }));
    return answer;
  };
  // The code is typed within its step or the next (the server accepts one step either side).
  const accepted = await typeCode(first.code);
  assert.deepEqual(accepted, { valid: "true", title: "Alice Liddell" });
  assert.equal(await door.textContent("#count"), "1 entries");
  await shot(door, "door-valid");
  await door.keyboard.press("Escape");
  await door.waitForSelector("#verdict", { state: "hidden" });
  const replayed = await typeCode(first.code);
  assert.deepEqual(replayed, { valid: "false", title: "Code already used" });
  await shot(door, "door-refused");
  report({ door_typed: "accepted then refused replayed" });
  await doorContext.close();

  // --- the camera: wait for the wallet's next code, film its QR code, scan it at the door.
  await wallet.waitForFunction((step) => Number(document.querySelector("output.code").dataset.step) > step,
    first.step, { timeout: 35000 });
  const second = await readCode();
  await wallet.evaluate(() => new Promise((resolve) => {
    const img = document.querySelector(".door-code img.qr");
    if (img.complete) resolve(); else img.onload = resolve;
  }));
  const png = join(WORK, "wallet-qr.png");
  await wallet.locator(".door-code img.qr").screenshot({ path: png });
  const y4m = join(WORK, "wallet-qr.y4m");
  execFileSync("ffmpeg", ["-loglevel", "error", "-y", "-loop", "1", "-i", png, "-vf",
    "scale=360:360,pad=640:480:(ow-iw)/2:(oh-ih)/2:white,format=yuv420p", "-frames:v", "10", y4m]);
  const camera = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...launchArgs, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-video-capture=${y4m}`],
  });
  try {
    const cameraContext = await camera.newContext({ permissions: ["camera"] });
    const scanner = await strictPage(cameraContext, PHONE);
    await scanner.goto(`${BASE}/door`);
    await scanner.waitForSelector("#f-username");
    await login(scanner, "door1");
    await scanner.click("#scan");
    await scanner.waitForSelector("#verdict:not([hidden])", { timeout: 20000 });
    const scanned = await scanner.evaluate(() => ({
      valid: document.getElementById("verdict").dataset.valid,
      title: document.querySelector(".verdict-title").textContent,
    }));
    assert.deepEqual(scanned, { valid: "true", title: "Alice Liddell" });
    report({ door_camera: "accepted", code: second.code });
  } finally {
    await camera.close();
  }
  // --- Watch: the ticket mints a playback token; hls.js plays the live stream with it.
  if (WATCH) {
    await wallet.click(`button[data-stream="${WATCH}"]`);
    const position = () => wallet.evaluate(() => document.querySelector("video.player").currentTime);
    await wallet.waitForFunction(() => document.querySelector("video.player").currentTime > 0.5, null, { timeout: 30000 });
    const start = await position();
    await wallet.waitForTimeout(2500);
    const later = await position();
    assert.ok(later > start + 1, `the video advances: ${start} then ${later}`);
    report({ watch_seconds: later });
    await wallet.evaluate(() => document.querySelector("video.player").scrollIntoView());
    await shot(wallet, "wallet-watch");
  }
  await walletContext.close();

  // --- /console: an administrator sees a live session, and the decisions of the last minutes.
  await admin("POST", "/api/users", {
    user: { username: "root1", password: PASSWORD, email: "root1@example.org" },
    role: "admin",
  });
  const viewer = await admin("POST", "/api/tokens", { user_id: "viewer-7", max_sessions: 2, allowed_streams: ["live/*"] });
  const played = await fetch(`${BASE}/auth?name=live/main&ip=10.0.0.7&proto=hls&session_id=s-7&token=${viewer.token}`);
  assert.equal(played.status, 200);
  await fetch(`${BASE}/auth?name=live/main&ip=10.0.0.8&session_id=s-8&token=wrong-token`);
  {
    const context = await browser.newContext();
    const page = await strictPage(context, DESKTOP);
    await page.goto(`${BASE}/console`);
    await page.waitForSelector("#f-username");
    await login(page, "root1");
    await page.waitForSelector("#live-count");
    // viewer-7's session, and the wallet's Watch session when it ran.
    await page.waitForFunction(() => Number(document.getElementById("live-count").textContent) >= 1, null, { timeout: 15000 });
    assert.ok(await page.locator("#sessions td", { hasText: "live/main" }).count() > 0, "the session's stream is listed");
    assert.ok(await page.locator("#sessions td", { hasText: "viewer-7" }).count() > 0, "the session's user is listed");
    // The access log is written behind in batches: the denial shows after a refresh at most.
    await page.waitForFunction(() => /denied [1-9]/.test(document.querySelector("#chart .legend").textContent),
      null, { timeout: 15000 });
    await page.waitForSelector("#tokens td >> text=viewer-7");
    report({ console_live_sessions: Number(await page.textContent("#live-count")) });
    await shot(page, "console");
    // Kick viewer-7's session with a one-minute ban: it is cut, and the same token is refused
    // on that stream even from a new player. (In one step: the list refreshes every 5 s.)
    await page.evaluate(() => {
      const row = [...document.querySelectorAll("#sessions tr")]
        .find((r) => r.textContent.includes("viewer-7") && r.querySelector("button[data-kick]"));
      row.querySelector("select").value = "60";
      row.querySelector("button[data-kick]").click();
    });
    await page.waitForFunction(() => /kicked, its token banned/.test(document.getElementById("status").textContent),
      null, { timeout: 15000 });
    const again = await fetch(`${BASE}/auth?name=live/main&ip=10.0.0.7&proto=hls&session_id=s-9&token=${viewer.token}`);
    assert.equal(again.status, 403);
    assert.equal((await again.json()).reason, "session_banned");
    report({ console_kicked: true });
    await context.close();
  }
  {
    const context = await browser.newContext();
    const page = await strictPage(context, PHONE);
    await page.goto(BASE + "/");
    await shot(page, "home");
    await context.close();
  }
} finally {
  await browser.close();
}
