// The paths of a sample (from the parse helper or a captured request) with checkboxes: the
// ones picked, each with an optional alias, become the trigger's request variables.
import { h } from "./dom.js";

const PARTS = ["headers", "query", "body"];

function preview(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text === undefined ? "" : text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** `paths`: {headers?, query?, body?: [{key, value, type}]}; `add(part, [{key, alias}])`. */
export function picker(paths, add) {
  const rows = [];
  const tables = PARTS.filter((part) => paths[part] && paths[part].length).map((part) =>
    h("table", { class: "list picker", "data-part": part },
      h("caption", {}, part),
      h("thead", {}, h("tr", {}, ["", "Path", "Type", "Sample", "Alias"].map((t) => h("th", {}, t)))),
      h("tbody", {}, paths[part].map((path) => {
        const box = h("input", { type: "checkbox", "data-key": path.key, "aria-label": `use ${path.key}` });
        const alias = h("input", { placeholder: "alias (optional)", class: "alias" });
        rows.push({ part, key: path.key, box, alias });
        return h("tr", {}, h("td", {}, box), h("td", {}, h("code", {}, path.key)),
          h("td", {}, path.type), h("td", { class: "muted" }, preview(path.value)), h("td", {}, alias));
      }))));
  if (!tables.length) return h("p", { class: "muted" }, "No paths in this sample.");
  const done = h("span", { class: "ok", role: "status" });
  const button = h("button", { type: "button", class: "use-paths" }, "Add the checked paths as variables");
  button.addEventListener("click", () => {
    let count = 0;
    for (const part of PARTS) {
      const picked = rows.filter((r) => r.part === part && r.box.checked)
        .map((r) => ({ key: r.key, alias: r.alias.value.trim() || undefined }));
      if (picked.length) add(part, picked);
      count += picked.length;
    }
    done.textContent = count ? `${count} added to the request variables (save to keep them).` : "Check some paths first.";
  });
  return h("div", { class: "picked" }, paths.truncated ? h("p", { class: "muted" }, "The sample is large: not every path is listed.") : null,
    tables, h("div", { class: "buttons" }, button, done));
}
