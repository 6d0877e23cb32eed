// Executions: newest first, filtered by status (and workflow); one execution node by node,
// with its trigger context and the response it gave; replay from there.
import { api, ApiError } from "./api.js";
import { handle } from "./app.js";
import { badge, duration, h, json, mount, when } from "./dom.js";

async function titles() {
  const page = await api("GET", "/api/workflows?limit=200");
  return new Map(page.items.map((w) => [w.id, w.title]));
}

export async function executionsView(params) {
  const status = params.get("status") || "";
  const workflow = params.get("workflow") || "";
  const names = await titles();
  const filter = h("select", { id: "status-filter", "aria-label": "status" },
    [["", "any status"], ["succeeded", "succeeded"], ["failed", "failed"]].map(([value, label]) =>
      h("option", { value, selected: value === status }, label)));
  filter.addEventListener("change", () => {
    const next = new URLSearchParams();
    if (filter.value) next.set("status", filter.value);
    if (workflow) next.set("workflow", workflow);
    location.hash = `#/executions?${next}`;
  });
  const body = h("tbody");
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Older executions");
  let cursor = null;
  async function load() {
    const query = new URLSearchParams({ limit: "50" });
    if (status) query.set("status", status);
    if (workflow) query.set("workflow", workflow);
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/executions?${query}`);
    body.append(...page.items.map((e) => h("tr", { "data-id": e.id },
      h("td", {}, when(e.receivedAt)),
      h("td", {}, names.get(e.workflowId) || h("span", { class: "muted" }, "(deleted)")),
      h("td", {}, badge(e.status)),
      h("td", {}, duration(e.startedAt, e.finishedAt)),
      h("td", {}, h("a", { href: `#/executions/${e.id}`, class: "execution" }, h("code", {}, e.id))),
      h("td", {}, e.replayOf ? h("a", { href: `#/executions/${e.replayOf}` }, "replay") : ""))));
    cursor = page.nextCursor;
    more.hidden = !cursor;
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No executions.")));
  }
  more.addEventListener("click", () => load().catch(handle));
  mount(
    h("div", { class: "heading" },
      h("h1", {}, "Executions", workflow ? ` of ${names.get(workflow) || workflow}` : ""),
      filter),
    h("table", { class: "list", id: "executions" },
      h("thead", {}, h("tr", {}, ["Received", "Workflow", "Status", "Duration", "Execution", ""].map((t) => h("th", {}, t)))),
      body),
    more,
  );
  await load();
}

export async function executionView(id) {
  let record = null;
  for (let tries = 0; ; tries++) {
    try {
      record = await api("GET", `/api/executions/${id}`);
      break;
    } catch (failure) {
      // A replay just queued is recorded once it ran: wait for it a little.
      if (!(failure instanceof ApiError && failure.status === 404) || tries >= 40) throw failure;
      if (tries === 0) mount(h("p", { class: "muted" }, "Waiting for the execution to be recorded…"));
      await new Promise((done) => setTimeout(done, 250));
    }
  }
  const names = await titles();
  const error = h("p", { class: "error", role: "alert" });
  const replay = (version) => async () => {
    try {
      const run = await api("POST", `/api/executions/${id}:replay`, { version });
      location.hash = `#/executions/${run.id}`;
    } catch (failure) {
      if (!handle(failure)) error.textContent = failure.message;
    }
  };
  mount(
    h("div", { class: "heading" },
      h("h1", {}, "Execution ", badge(record.status)),
      h("div", { class: "buttons" },
        h("button", { type: "button", id: "replay", onclick: replay("current") }, "Replay on the current version"),
        h("button", { type: "button", class: "quiet", onclick: replay("original") }, `Replay on version ${record.version}`))),
    error,
    h("dl", { class: "meta", id: "summary" },
      item("Workflow", h("a", { href: `#/workflows/${record.workflowId}` }, names.get(record.workflowId) || record.workflowId)),
      item("Version", record.version),
      item("Execution", h("code", {}, record.id)),
      item("Received", when(record.receivedAt)),
      item("Duration", duration(record.startedAt, record.finishedAt)),
      item("Request id", record.requestId),
      record.idempotencyKey && item("Idempotency key", record.idempotencyKey),
      record.replayOf && item("Replay of", h("a", { href: `#/executions/${record.replayOf}` }, record.replayOf))),
    record.error && h("p", { class: "error" }, record.error),
    h("section", { id: "context" }, h("h2", {}, "Trigger context"),
      h("div", { class: "columns" },
        h("div", {}, h("h3", {}, "Headers"), json(record.context.headers)),
        h("div", {}, h("h3", {}, "Query"), json(record.context.query)),
        h("div", {}, h("h3", {}, "Body"), json(record.context.body)))),
    h("section", {}, h("h2", {}, "Nodes"),
      record.nodes.length
        ? h("ol", { class: "nodes", id: "nodes" }, record.nodes.map(node))
        : h("p", { class: "muted" }, "No node ran.")),
    record.response && h("section", { id: "response" }, h("h2", {}, "Response given (sync mode)"),
      h("dl", { class: "meta" },
        item("Status", record.response.statusCode),
        item("Headers", json(record.response.headers))),
      json(record.response.body)),
  );
}

function item(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function node(result) {
  return h("li", { class: `node ${result.status}`, "data-key": result.key },
    h("div", { class: "node-head" },
      h("strong", {}, result.key), " ", h("span", { class: "muted" }, result.type), " ",
      badge(result.status), " ",
      h("small", { class: "muted" }, duration(result.startedAt, result.finishedAt))),
    result.error && h("p", { class: "error node-error" }, result.error),
    result.result !== undefined && result.result !== null && json(result.result));
}
