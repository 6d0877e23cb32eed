// The list of workflows: title, enabled, mode, last execution, webhook URL; enable, delete.
import { api } from "./api.js";
import { handle } from "./app.js";
import { badge, copyButton, h, mount, when } from "./dom.js";

export async function workflowsView() {
  const workflows = [];
  let cursor = null;
  do {
    const page = await api("GET", `/api/workflows?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    workflows.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  const status = h("p", { class: "error", role: "alert" });
  mount(
    h("div", { class: "heading" },
      h("h1", {}, "Workflows"),
      h("a", { class: "button", href: "#/workflows/new", id: "new-workflow" }, "New workflow")),
    status,
    workflows.length
      ? h("table", { class: "list", id: "workflows" },
          h("thead", {}, h("tr", {},
            ["Title", "Enabled", "Mode", "Last execution", "Webhook URL", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, workflows.map((workflow) => row(workflow, status))))
      : h("p", { class: "muted" }, "No workflows yet: create one."),
  );
}

function row(workflow, status) {
  const last = workflow.lastExecution;
  const enabled = h("input", { type: "checkbox", checked: workflow.enabled, class: "enabled",
    "aria-label": `enable ${workflow.title}` });
  enabled.addEventListener("change", async () => {
    enabled.disabled = true;
    try {
      await api("PATCH", `/api/workflows/${workflow.id}`, { enabled: enabled.checked });
    } catch (failure) {
      if (handle(failure)) return;
      enabled.checked = !enabled.checked;
      status.textContent = failure.message;
    }
    enabled.disabled = false;
  });
  const remove = h("button", { type: "button", class: "danger quiet delete" }, "Delete");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the workflow "${workflow.title}"? Its webhook URL stops working; its executions stay readable.`)) return;
    try {
      await api("DELETE", `/api/workflows/${workflow.id}`);
      await workflowsView();
    } catch (failure) {
      if (!handle(failure)) status.textContent = failure.message;
    }
  });
  return h("tr", { "data-id": workflow.id },
    h("td", {}, h("a", { href: `#/workflows/${workflow.id}`, class: "title" }, workflow.title)),
    h("td", {}, enabled),
    h("td", {}, workflow.sync ? "sync" : "async"),
    h("td", { class: "last" }, last
      ? [h("a", { href: `#/executions/${last.id}` }, badge(last.status)), " ",
         h("small", { class: "muted" }, when(last.startedAt))]
      : badge(null)),
    h("td", { class: "url" }, h("code", {}, workflow.webhookUrl), copyButton(workflow.webhookUrl)),
    h("td", {}, h("div", { class: "actions" },
      h("a", { href: `#/executions?workflow=${workflow.id}` }, "Executions"), remove)),
  );
}
