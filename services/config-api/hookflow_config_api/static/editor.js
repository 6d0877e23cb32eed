// One workflow: a form for the trigger, the nodes as JSON, the parse helper and live capture.
// Saving sends the whole document (PUT, or POST for a new one); the config API's validation
// errors are shown beside the field their path names.
import { api, ApiError } from "./api.js";
import { handle } from "./app.js";
import { copyButton, field, h, mount } from "./dom.js";
import { captureSection } from "./capture.js";
import { picker } from "./picker.js";

const BLANK = {
  title: "", enabled: true, sync: false, syncTimeout: 30,
  trigger: { request: { headers: [], query: [], body: [] }, response: { statusCode: 200, headers: [], body: "ok" } },
  nodes: [],
};
const PARTS = ["headers", "query", "body"];

export async function editorView(id) {
  const isNew = id === "new";
  const workflow = isNew ? structuredClone(BLANK) : await api("GET", `/api/workflows/${id}`);
  const trigger = workflow.trigger;
  const vars = Object.fromEntries(PARTS.map((p) => [p, [...((trigger.request || {})[p] || [])]]));
  const inputs = {};
  const input = (name, attrs) => (inputs[name] = h("input", { "data-path": name, ...attrs }));
  const select = (name, options, current) => (inputs[name] = h("select", { "data-path": name },
    options.map(([value, label]) => h("option", { value, selected: value === (current ?? "") }, label))));

  const auth = trigger.basicAuth;
  const sig = trigger.signature || {};
  const idem = trigger.idempotency || {};
  const idemSource = ["header", "query", "body"].find((source) => idem[source] !== undefined) || "";
  const response = trigger.response || BLANK.trigger.response;
  const secretBox = h("div", { class: "secret", id: "new-secret", hidden: true });
  const formError = h("div", { class: "error", id: "form-error", role: "alert" });
  const saved = h("span", { class: "ok", id: "saved", role: "status" });

  const nodes = h("textarea", { "data-path": "nodes", id: "nodes-json", rows: 14, spellcheck: "false" },
    JSON.stringify(workflow.nodes || [], null, 2));
  const responseBody = h("textarea", { "data-path": "trigger.response.body", rows: 3 },
    typeof response.body === "string" ? response.body : JSON.stringify(response.body, null, 2));
  const responseHeaders = h("textarea", { "data-path": "trigger.response.headers", rows: 2,
    placeholder: "X-Ack: 1" }, (response.headers || []).map((x) => `${x.name}: ${x.value}`).join("\n"));

  const varsBox = h("div", { id: "variables" });
  function renderVars() {
    varsBox.replaceChildren(...PARTS.map((part) => h("div", { class: "vars", "data-path": `trigger.request.${part}` },
      h("h3", {}, part),
      vars[part].map((v, i) => h("div", { class: "var-row" },
        h("input", { value: v.key, placeholder: part === "headers" ? "x-request-id" : "order.id",
          "data-path": `trigger.request.${part}[${i}].key`, oninput: (e) => { v.key = e.target.value; } }),
        h("input", { value: v.alias || "", placeholder: "alias (optional)",
          "data-path": `trigger.request.${part}[${i}].alias`, oninput: (e) => { v.alias = e.target.value; } }),
        h("button", { type: "button", class: "quiet", onclick: () => { vars[part].splice(i, 1); renderVars(); } }, "Remove"))),
      h("button", { type: "button", class: "quiet", onclick: () => { vars[part].push({ key: "" }); renderVars(); } }, `Add ${part} variable`))));
  }
  renderVars();
  /** Paths picked in the parse helper or a captured sample become request variables. */
  function addVariables(part, picked) {
    for (const { key, alias } of picked) {
      if (!vars[part].some((v) => v.key === key)) vars[part].push(alias ? { key, alias } : { key });
    }
    renderVars();
  }

  const sample = h("textarea", { id: "parse-sample", rows: 4,
    placeholder: "https://shop.example/notify?order[id]=A1   or   {\"status\": \"paid\", \"order\": {\"id\": \"A1\"}}" });
  const parsed = h("div", { id: "parsed" });
  async function parse(kind) {
    const text = sample.value.trim();
    let payload = { url: text };
    if (kind === "body") {
      try {
        payload = { body: JSON.parse(text) };
      } catch {
        const type = text.startsWith("<") ? "application/xml" : "application/x-www-form-urlencoded";
        payload = { sample: text, contentType: type };
      }
    }
    try {
      const answer = await api("POST", "/api/webhook:parse", payload);
      parsed.replaceChildren(picker(answer, addVariables));
    } catch (failure) {
      if (!handle(failure)) parsed.replaceChildren(h("p", { class: "error" }, failure.message));
    }
  }

  function collect() {
    const num = (name) => (inputs[name].value === "" ? undefined : Number(inputs[name].value));
    const text = (name) => inputs[name].value.trim() || undefined;
    const doc = {
      title: inputs.title.value, description: text("description"),
      enabled: inputs.enabled.checked, sync: inputs.sync.value === "sync", syncTimeout: num("syncTimeout"),
      trigger: { request: Object.fromEntries(PARTS.map((p) => [p, vars[p].map((v) =>
        (v.alias ? { key: v.key, alias: v.alias } : { key: v.key }))])) },
    };
    if (inputs.authOn.checked) {
      doc.trigger.basicAuth = { username: inputs["trigger.basicAuth.username"].value, password: text("trigger.basicAuth.password") };
    }
    const scheme = inputs["trigger.signature.scheme"].value;
    if (scheme) {
      doc.trigger.signature = { scheme, secret: text("trigger.signature.secret"),
        header: text("trigger.signature.header"), prefix: text("trigger.signature.prefix"),
        timestampHeader: text("trigger.signature.timestampHeader"),
        algorithm: inputs["trigger.signature.algorithm"].value, encoding: inputs["trigger.signature.encoding"].value,
        tolerance: num("trigger.signature.tolerance") };
    }
    if (text("trigger.rateLimit.rate") || text("trigger.rateLimit.burst")) {
      doc.trigger.rateLimit = { rate: num("trigger.rateLimit.rate"), burst: num("trigger.rateLimit.burst") };
    }
    doc.trigger.maxBodyBytes = num("trigger.maxBodyBytes");
    const source = inputs.idemSource.value;
    if (source) {
      doc.trigger.idempotency = { [source]: inputs["trigger.idempotency.path"].value, window: num("trigger.idempotency.window") };
    }
    let body = responseBody.value;
    try { body = JSON.parse(body); } catch { /* plain text */ }
    doc.trigger.response = {
      statusCode: num("trigger.response.statusCode"), body,
      headers: responseHeaders.value.split("\n").filter((l) => l.trim()).map((line) => {
        const at = line.indexOf(":");
        return { name: line.slice(0, at < 0 ? line.length : at).trim(), value: at < 0 ? "" : line.slice(at + 1).trim() };
      }),
    };
    doc.nodes = JSON.parse(nodes.value || "[]");
    return doc;
  }

  async function save(event) {
    event.preventDefault();
    clearErrors(form, formError);
    saved.textContent = "";
    let doc;
    try {
      doc = collect();
    } catch (failure) {
      return showErrors(form, formError, [{ path: "nodes", message: `not valid JSON: ${failure.message}` }]);
    }
    try {
      const answer = isNew
        ? await api("POST", "/api/workflows", doc)
        : await api("PUT", `/api/workflows/${id}`, doc);
      const secret = answer.trigger.signature && answer.trigger.signature.secret;
      if (isNew) {
        location.hash = `#/workflows/${answer.id}`;
        if (secret) sessionStorage.setItem("hookflow.new-secret", secret);
        return;
      }
      await editorView(answer.id);
      showSecret(secret);
      document.getElementById("saved").textContent = `Saved: version ${answer.version}.`;
    } catch (failure) {
      if (handle(failure)) return;
      if (failure instanceof ApiError && failure.details.length) showErrors(form, formError, failure.details, failure.message);
      else formError.textContent = failure.message;
    }
  }

  function showSecret(secret) {
    if (!secret) return;
    secretBox.hidden = false;
    secretBox.replaceChildren(h("strong", {}, "The signing secret, shown this once: "),
      h("code", {}, secret), copyButton(secret), h("small", {}, "Give it to the sender now; the console cannot show it again."));
  }

  async function rotate() {
    if (!confirm("Rotate the signing secret? The old one stops working at once.")) return;
    try {
      const answer = await api("POST", `/api/workflows/${id}/signature:rotate`);
      showSecret(answer.trigger.signature.secret);
    } catch (failure) {
      if (!handle(failure)) formError.textContent = failure.message;
    }
  }

  const form = h("form", { id: "editor", novalidate: true, onsubmit: save },
    h("div", { class: "heading" },
      h("h1", {}, isNew ? "New workflow" : workflow.title),
      h("div", { class: "buttons" }, saved, h("button", { type: "submit", id: "save" }, isNew ? "Create" : "Save"))),
    formError, secretBox,
    !isNew && h("p", { class: "webhook" }, "Webhook URL ", h("code", { id: "webhook-url" }, workflow.webhookUrl),
      copyButton(workflow.webhookUrl), " ",
      h("a", { href: `#/executions?workflow=${id}` }, "Executions"), " · version ", workflow.version),
    h("fieldset", {}, h("legend", {}, "Workflow"),
      field("Title", input("title", { value: workflow.title, id: "title" })),
      field("Description", input("description", { value: workflow.description || "" })),
      h("div", { class: "row" },
        field("Enabled", (inputs.enabled = h("input", { type: "checkbox", "data-path": "enabled", checked: workflow.enabled }))),
        field("Mode", select("sync", [["async", "async: answer at once"], ["sync", "sync: the workflow answers"]], workflow.sync ? "sync" : "async")),
        field("Sync timeout (s)", input("syncTimeout", { type: "number", min: 1, max: 300, step: "any", value: workflow.syncTimeout })))),
    h("fieldset", { "data-path": "trigger.basicAuth" }, h("legend", {}, "HTTP Basic auth"),
      field("Require Basic auth", (inputs.authOn = h("input", { type: "checkbox", id: "auth-on", checked: Boolean(auth) }))),
      h("div", { class: "row" },
        field("Username", input("trigger.basicAuth.username", { id: "auth-username", value: auth ? auth.username : "", autocomplete: "off" })),
        field("Password", input("trigger.basicAuth.password", { id: "auth-password", type: "password", autocomplete: "new-password",
          placeholder: auth && auth.passwordSet ? "set: leave empty to keep it" : "" }), "write-only: never shown again"))),
    h("fieldset", { "data-path": "trigger.signature" }, h("legend", {}, "Signature (HMAC)"),
      h("div", { class: "row" },
        field("Scheme", select("trigger.signature.scheme", [["", "none"], ["standardWebhooks", "Standard Webhooks"],
          ["stripe", "Stripe"], ["github", "GitHub"], ["hmac", "generic HMAC"]], sig.scheme)),
        field("Secret", input("trigger.signature.secret", { type: "password", autocomplete: "new-password",
          placeholder: sig.secretSet ? "set: leave empty to keep it" : "empty: generated (Stripe: paste whsec_…)" })),
        !isNew && sig.secretSet && sig.scheme !== "stripe" &&
          h("button", { type: "button", class: "quiet", id: "rotate", onclick: rotate }, "Rotate secret")),
      h("div", { class: "row" },
        field("Header (hmac)", input("trigger.signature.header", { value: sig.header || "", placeholder: "X-Signature" })),
        field("Prefix (hmac)", input("trigger.signature.prefix", { value: sig.prefix || "", placeholder: "sha256=" })),
        field("Timestamp header (hmac)", input("trigger.signature.timestampHeader", { value: sig.timestampHeader || "" })),
        field("Algorithm", select("trigger.signature.algorithm", [["sha256", "sha256"], ["sha512", "sha512"]], sig.algorithm || "sha256")),
        field("Encoding", select("trigger.signature.encoding", [["hex", "hex"], ["base64", "base64"]], sig.encoding || "hex")),
        field("Tolerance (s)", input("trigger.signature.tolerance", { type: "number", value: sig.tolerance ?? 300 })))),
    h("fieldset", {}, h("legend", {}, "Limits and idempotency"),
      h("div", { class: "row" },
        field("Rate (requests/s)", input("trigger.rateLimit.rate", { type: "number", step: "any", value: trigger.rateLimit?.rate ?? "" }), "empty: the gateways' default"),
        field("Burst", input("trigger.rateLimit.burst", { type: "number", value: trigger.rateLimit?.burst ?? "" })),
        field("Body limit (bytes)", input("trigger.maxBodyBytes", { type: "number", value: trigger.maxBodyBytes ?? "" }), "empty: the default (1 MiB)")),
      h("div", { class: "row" },
        field("Event id in", (inputs.idemSource = h("select", { "data-path": "trigger.idempotency" },
          [["", "none: every call runs"], ["header", "a header"], ["query", "the query"], ["body", "the body"]].map(([v, l]) =>
            h("option", { value: v, selected: v === idemSource }, l))))),
        field("Header name or path", input("trigger.idempotency.path", { value: idemSource ? idem[idemSource] : "", placeholder: "out_trade_no" })),
        field("Window (s)", input("trigger.idempotency.window", { type: "number", value: idem.window ?? 86400 })))),
    h("fieldset", { "data-path": "trigger.request" }, h("legend", {}, "Request variables"),
      h("p", { class: "muted" }, "The headers that enter the context, and the query and body paths offered as variables."),
      varsBox,
      h("details", { open: true, id: "parse-helper" }, h("summary", {}, "Parse a sample"),
        sample,
        h("div", { class: "buttons" },
          h("button", { type: "button", class: "quiet", id: "parse-url", onclick: () => parse("url") }, "Parse as URL"),
          h("button", { type: "button", class: "quiet", id: "parse-body", onclick: () => parse("body") }, "Parse as body")),
        parsed),
      !isNew && captureSection(id, workflow.webhookUrl, addVariables)),
    h("fieldset", { "data-path": "trigger.response" }, h("legend", {}, "Async response"),
      h("p", { class: "muted" }, "What the caller gets at once in async mode (sync mode: the response node decides)."),
      h("div", { class: "row" },
        field("Status", input("trigger.response.statusCode", { type: "number", min: 200, max: 599, value: response.statusCode ?? 200 })),
        field("Headers", responseHeaders, "one Name: value per line")),
      field("Body", responseBody, "text, or JSON")),
    h("fieldset", {}, h("legend", {}, "Nodes (JSON)"),
      nodes,
      h("button", { type: "button", class: "quiet", onclick: () => {
        try { nodes.value = JSON.stringify(JSON.parse(nodes.value || "[]"), null, 2); } catch (e) { showErrors(form, formError, [{ path: "nodes", message: e.message }]); }
      } }, "Format")),
  );
  mount(form);
  // The Basic auth fields only while it is required; the HMAC settings only for the generic scheme.
  const authFields = inputs["trigger.basicAuth.username"].closest(".row");
  const hmacFields = inputs["trigger.signature.header"].closest(".row");
  const scheme = inputs["trigger.signature.scheme"];
  const toggle = () => {
    authFields.hidden = !inputs.authOn.checked;
    hmacFields.hidden = !scheme.value;
    inputs["trigger.signature.secret"].closest(".field").hidden = !scheme.value;
    for (const name of ["header", "prefix", "timestampHeader", "algorithm", "encoding"]) {
      inputs[`trigger.signature.${name}`].closest(".field").hidden = scheme.value !== "hmac";
    }
  };
  inputs.authOn.addEventListener("change", toggle);
  scheme.addEventListener("change", toggle);
  toggle();
  showSecret(sessionStorage.getItem("hookflow.new-secret"));
  sessionStorage.removeItem("hookflow.new-secret");
}

function clearErrors(form, box) {
  box.replaceChildren();
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const old of form.querySelectorAll(".invalid")) old.classList.remove("invalid");
}

/** Each error beside the field its path names (or the closest enclosing one). */
function showErrors(form, box, details, summary) {
  if (summary) box.append(h("p", {}, summary));
  for (const detail of details) {
    let path = detail.path;
    let target = null;
    while (path && !(target = form.querySelector(`[data-path="${CSS.escape(path)}"]`))) {
      path = path.includes(".") || path.includes("[") ? path.replace(/(\.[^.[\]]*|\[\d+\])$/, "") : "";
    }
    const message = h("small", { class: "field-error" }, `${detail.path}: ${detail.message}`);
    if (target) {
      target.classList.add("invalid");
      target.after(message);
    } else box.append(message);
  }
}
