// Live capture: listen to the workflow's webhook for a while, show each request that comes in
// (headers without credentials, query, body) and offer its paths as the parse helper does.
import { api } from "./api.js";
import { handle } from "./app.js";
import { h, json, when } from "./dom.js";
import { picker } from "./picker.js";

export function captureSection(workflowId, webhookUrl, addVariables) {
  const status = h("p", { class: "muted", id: "capture-status", role: "status" },
    "Press Listen, then send a real request to the webhook URL.");
  const samples = h("div", { id: "samples" });
  const listen = h("button", { type: "button", id: "listen" }, "Listen");
  const stop = h("button", { type: "button", class: "quiet", id: "stop-listening", hidden: true }, "Stop");
  let timer = null;
  let shown = 0;

  function finish(message) {
    clearTimeout(timer);
    timer = null;
    listen.hidden = false;
    stop.hidden = true;
    status.textContent = message;
  }

  async function poll(captureId) {
    try {
      const answer = await api("GET", `/api/workflows/${workflowId}/captures?capture=${captureId}`);
      for (const sample of answer.items.slice(shown)) samples.prepend(sampleView(sample, addVariables));
      shown = answer.items.length;
      if (!answer.active) return finish(`Stopped listening: ${shown} request(s) captured.`);
      if (document.body.contains(samples)) timer = setTimeout(() => poll(captureId), 1000);
    } catch (failure) {
      if (!handle(failure)) finish(failure.message);
    }
  }

  listen.addEventListener("click", async () => {
    try {
      const opened = await api("POST", `/api/workflows/${workflowId}/captures`, { seconds: 120, limit: 5 });
      shown = 0;
      samples.replaceChildren();
      listen.hidden = true;
      stop.hidden = false;
      status.textContent = `Listening until ${new Date(opened.until).toLocaleTimeString()} (at most ${opened.limit} requests): send a request to ${webhookUrl}`;
      poll(opened.captureId);
    } catch (failure) {
      if (!handle(failure)) status.textContent = failure.message;
    }
  });
  stop.addEventListener("click", async () => {
    try {
      await api("DELETE", `/api/workflows/${workflowId}/captures`);
    } catch (failure) {
      if (handle(failure)) return;
    }
    finish(`Stopped listening: ${shown} request(s) captured.`);
  });
  return h("details", { open: true, id: "capture" }, h("summary", {}, "Capture a live request"),
    h("div", { class: "buttons" }, listen, stop), status, samples);
}

function sampleView(sample, addVariables) {
  const paths = h("div", { class: "sample-paths" });
  const offer = h("button", { type: "button", class: "quiet offer-paths" }, "Pick variables from this request");
  offer.addEventListener("click", async () => {
    try {
      const found = { headers: Object.entries(sample.headers).map(([key, value]) => ({ key, value, type: "string" })) };
      if (sample.queryString) found.query = (await api("POST", "/api/webhook:parse", { url: `?${sample.queryString}` })).query;
      if (sample.body !== null && typeof sample.body === "object") {
        found.body = (await api("POST", "/api/webhook:parse", { body: sample.body })).body;
      }
      paths.replaceChildren(picker(found, addVariables));
    } catch (failure) {
      if (!handle(failure)) paths.replaceChildren(h("p", { class: "error" }, failure.message));
    }
  });
  return h("article", { class: "sample card" },
    h("div", { class: "node-head" }, h("strong", {}, sample.method), " ",
      h("span", { class: "muted" }, when(sample.receivedAt)), " ", h("code", {}, sample.contentType)),
    h("div", { class: "columns" },
      h("div", {}, h("h3", {}, "Headers"), json(sample.headers)),
      h("div", {}, h("h3", {}, "Query"), json(sample.query)),
      h("div", {}, h("h3", {}, "Body"), json(sample.body))),
    offer, paths);
}
