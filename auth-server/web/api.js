// What every page shares: JSON calls to /api, DOM building without innerHTML (nothing the
// server or a user sends is ever parsed as HTML), and the login / registration form.
//
// The session is the server's `access_token` cookie (HttpOnly, SameSite=Strict): no script here
// ever sees the token. Bodies are always sent as application/json, which the API requires (its
// defence against cross-site form posts).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.field = body && body.field;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `el("p", {class: "x"}, "text", child)`: an element; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

export function status(text, kind = "") {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = `status ${kind}`;
}

export function personName(account) {
  const full = [account.first_name, account.last_name].filter(Boolean).join(" ");
  return full || account.username;
}

export function when(rfc3339) {
  if (!rfc3339) return "";
  return new Date(rfc3339).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function field(label, name, type = "text", extra = {}) {
  const id = `f-${name}`;
  return el("p", { class: "field" },
    el("label", { for: id }, label),
    el("input", { id, name, type, required: true, ...extra }));
}

/**
 * The login form (and, with `register`, the registration form beside it). Calls `done` once
 * the cookie is set.
 */
export function loginForms(container, { register = false, done }) {
  const login = el("form", { class: "card", "aria-labelledby": "login-title" },
    el("h2", { id: "login-title" }, "Log in"),
    field("Username", "username", "text", { autocomplete: "username", autocapitalize: "none" }),
    field("Password", "password", "password", { autocomplete: "current-password" }),
    el("button", { type: "submit" }, "Log in"));
  login.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(login);
    try {
      await api("POST", "/api/login", { username: form.get("username"), password: form.get("password") });
      status("");
      done();
    } catch (err) {
      status(err.message, "error");
    }
  });
  container.append(login);
  if (!register) return;
  const signup = el("form", { class: "card", "aria-labelledby": "register-title" },
    el("h2", { id: "register-title" }, "New here? Create an account"),
    field("Username", "r-username", "text", { autocomplete: "username", autocapitalize: "none" }),
    field("Email", "r-email", "email", { autocomplete: "email" }),
    field("First name", "r-first", "text", { autocomplete: "given-name", required: false }),
    field("Last name", "r-last", "text", { autocomplete: "family-name", required: false }),
    field("Password", "r-password", "password", { autocomplete: "new-password", minlength: 8 }),
    el("button", { type: "submit" }, "Create account"));
  signup.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(signup);
    const username = form.get("r-username");
    const password = form.get("r-password");
    try {
      await api("POST", "/api/users", {
        user: {
          username,
          password,
          email: form.get("r-email"),
          first_name: form.get("r-first") || "",
          last_name: form.get("r-last") || "",
        },
      });
      await api("POST", "/api/login", { username, password });
      status("");
      done();
    } catch (err) {
      status(err.field ? `${err.field}: ${err.message}` : err.message, "error");
    }
  });
  container.append(signup);
}

/** The logged-in account and its events, or null when the cookie does not log in. */
export async function whoami() {
  try {
    return await api("GET", "/api/me");
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

export function accountBar(me, onLogout) {
  const out = el("button", { type: "button", class: "link" }, "Log out");
  out.addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout");
    } catch (err) {
      status(err.message, "error");
    }
    onLogout();
  });
  return el("p", { class: "account" }, "Logged in as ", el("strong", {}, me.account.username), " · ", out);
}
