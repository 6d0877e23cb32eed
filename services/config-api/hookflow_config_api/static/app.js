// The console's entry: sign-in, the routes (#/workflows, #/workflows/<id>, #/executions...),
// and the way back to sign-in whenever the API refuses the token.
import { api, token, Unauthorized } from "./api.js";
import { h, mount } from "./dom.js";
import { editorView } from "./editor.js";
import { executionView, executionsView } from "./executions.js";
import { workflowsView } from "./workflows.js";

let notice = "";

function takeTokenFromUrl() {
  const match = location.hash.match(/^#token=(.+)$/);
  if (!match) return;
  token.set(decodeURIComponent(match[1]));
  // The token leaves the address bar (and the history) at once.
  history.replaceState(null, "", `${location.pathname}${location.search}#/workflows`);
}

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", {
    id: "token", type: "password", autocomplete: "off", required: true,
    placeholder: "HOOKFLOW_ADMIN_TOKEN",
  });
  const error = h("p", { class: "error", id: "sign-in-error", role: "alert" }, message || "");
  const form = h("form", { class: "card sign-in", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" },
      "The admin token: the one ", h("code", {}, "hookflow run"), " prints, or ",
      h("code", {}, "HOOKFLOW_ADMIN_TOKEN"), ". ",
      "It is kept for this browser tab's session only."),
    input, error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    try {
      await api("GET", "/api/workflows?limit=1");
    } catch (failure) {
      error.textContent = failure instanceof Unauthorized
        ? "That token was refused by the config API." : failure.message;
      return;
    }
    notice = "";
    location.hash = "#/workflows";
    route();
  });
  mount(form);
  input.focus();
}

function signOut() {
  token.clear();
  notice = "Signed out.";
  history.replaceState(null, "", location.pathname);
  signIn(notice);
}

async function route() {
  takeTokenFromUrl();
  if (!token.get()) return signIn(notice);
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query);
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.section === (parts[0] || "workflows"));
  }
  try {
    if (parts[0] === "executions" && parts[1]) await executionView(parts[1]);
    else if (parts[0] === "executions") await executionsView(params);
    else if (parts[0] === "workflows" && parts[1]) await editorView(parts[1]);
    else await workflowsView();
  } catch (failure) {
    if (failure instanceof Unauthorized) {
      notice = failure.message;
      return signIn(failure.message);
    }
    mount(h("p", { class: "error", role: "alert" }, failure.message));
  }
}

/** Views call this when a later call (a click) meets a refused token. */
export function handle(failure) {
  if (failure instanceof Unauthorized) {
    signIn(failure.message);
    return true;
  }
  return false;
}

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
