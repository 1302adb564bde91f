// PromptPilot inspector: progressive enhancement over server-rendered pages; no build step.
// Calls the JSON API with the session cookie and the CSRF token from the page's meta tag.
"use strict";
(function () {
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const TERMINAL = ["completed", "failed", "cancelled"];

  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-PromptPilot-CSRF": CSRF },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
      const error = new Error(message);
      error.problems = (data && data.error && data.error.problems) || [];
      throw error;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const pretty = (value) => JSON.stringify(value, null, 2);
  const badge = (status) => el("span", { class: `badge status-${status}` }, status);
  const jsonBlock = (label, value, open) =>
    el("details", { class: "json", open: !!open }, el("summary", {}, label),
       el("pre", { tabindex: "0" }, el("code", {}, pretty(value))));
  const money = (v) => (v === null || v === undefined ? "—" : `$${Number(v).toFixed(v < 0.01 ? 6 : 4)}`);
  const ms = (v) => (v === null || v === undefined ? "—" : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);

  // A JSON-object textarea: the parsed value, or an inline error (nothing is sent then).
  function readJson(textarea, errorBox, { allowEmpty } = {}) {
    const text = textarea.value.trim();
    let message = null, value = null;
    if (!text) {
      if (!allowEmpty) message = "Enter a JSON object, e.g. {\"topic\": \"tides\"}.";
    } else {
      try {
        value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          message = "The input must be a JSON object ({...}).";
        }
      } catch (e) {
        message = `Not valid JSON: ${e.message}`;
      }
    }
    showError(textarea, errorBox, message);
    return message ? { ok: false } : { ok: true, value, empty: !text };
  }

  function showError(field, box, message) {
    if (field) {
      if (message) field.setAttribute("aria-invalid", "true"); else field.removeAttribute("aria-invalid");
    }
    if (box) { box.textContent = message || ""; box.hidden = !message; }
  }

  function busy(button, on) { if (button) { button.disabled = on; } }

  // Shared with actions.js (loaded after this file).
  window.PromptPilot = { api, el, busy, showError, readJson, money };

  // Live JSON checks as the user types.
  document.querySelectorAll("textarea.json-input").forEach((area) => {
    const box = document.getElementById((area.getAttribute("aria-describedby") || "").split(" ").pop());
    area.addEventListener("input", () => readJson(area, box, { allowEmpty: true }));
  });

  // Start a run (workflow page).
  document.querySelectorAll("form.js-run-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const area = form.querySelector("textarea"), box = form.querySelector(".field-error");
      const parsed = readJson(area, box, { allowEmpty: true });
      if (!parsed.ok) { area.focus(); return; }
      const button = form.querySelector("button"); busy(button, true);
      try {
        const data = await api("POST", `/api/workflows/${encodeURIComponent(form.dataset.slug)}/run?wait=0`,
                               { input: parsed.value || {} });
        window.location.assign(`/ui/runs/${data.run.id}`);
      } catch (e) { showError(area, box, e.message); busy(button, false); }
    });
  });

  // Rerun from a step, with optional edited input and prompt overrides.
  document.querySelectorAll("form.rerun-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const area = form.querySelector('textarea[name="input"]'), box = form.querySelector(".field-error");
      const parsed = readJson(area, box, { allowEmpty: true });
      if (!parsed.ok) { area.focus(); return; }
      const stepId = form.dataset.stepId;
      const body = { fromStepId: stepId };
      if (!parsed.empty && area.value !== area.defaultValue) body.input = parsed.value;
      const override = {};
      for (const name of ["promptUser", "promptSystem"]) {
        const field = form.querySelector(`textarea[name="${name}"]`);
        if (field && field.value.trim()) override[name] = field.value;
      }
      if (Object.keys(override).length) body.stepOverrides = { [stepId]: override };
      const button = form.querySelector('button[type="submit"]'); busy(button, true);
      try {
        const data = await api("POST", `/api/workflows/runs/${form.dataset.runId}/rerun?wait=0`, body);
        window.location.assign(`/ui/runs/${data.run.id}`);
      } catch (e) { showError(null, box, `Rerun refused: ${e.message}`); busy(button, false); }
    });
  });

  // Live run page: step transitions from the SSE endpoint, updated in place.
  const runBox = document.querySelector("[data-live]");
  if (runBox && window.EventSource) {
    const runId = runBox.dataset.runId;
    const source = new EventSource(`/api/workflows/runs/${runId}/events`);
    const setRunStatus = (status) => {
      runBox.dataset.status = status;
      const holder = document.getElementById("run-status");
      holder.replaceChildren(badge(status));
    };
    // Tokens and cost so far: the sum over steps of what each step event last said.
    const usage = {};
    document.querySelectorAll("li.step").forEach((item) => {
      usage[item.dataset.stepId] = { tokensIn: Number(item.dataset.tokensIn) || 0,
        tokensOut: Number(item.dataset.tokensOut) || 0, cost: Number(item.dataset.cost) || 0 };
    });
    const showUsage = () => {
      let tokensIn = 0, tokensOut = 0, cost = 0;
      for (const u of Object.values(usage)) { tokensIn += u.tokensIn; tokensOut += u.tokensOut; cost += u.cost; }
      document.getElementById("run-tokens").textContent = `${tokensIn} / ${tokensOut}`;
      document.getElementById("run-cost").textContent = money(cost);
    };
    source.addEventListener("step", (event) => {
      const data = JSON.parse(event.data);
      usage[data.stepId] = { tokensIn: data.tokensIn || 0, tokensOut: data.tokensOut || 0, cost: data.cost || 0 };
      showUsage();
      if (data.status === "waiting" && !document.getElementById(`approval-${data.stepId}`)) {
        // A step began to wait: the page shows its approve and reject buttons.
        source.close(); window.location.reload(); return;
      }
      const item = document.getElementById(`step-${data.stepId}`);
      if (!item) return;
      item.dataset.status = data.status;
      item.querySelector('[data-field="status"]').replaceChildren(badge(data.status));
      const facts = {
        attempts: `${data.attempts} attempt${data.attempts === 1 ? "" : "s"}`,
        tokens: `${data.tokensIn}→${data.tokensOut} tok`, cost: money(data.cost),
      };
      for (const [name, text] of Object.entries(facts)) {
        const span = item.querySelector(`[data-field="${name}"]`);
        if (span) span.textContent = text;
      }
    });
    // Text an llm or agent step is writing, as the provider streams it; a new attempt, turn
    // or repair call starts the text over.
    const streams = {};
    source.addEventListener("delta", (event) => {
      const data = JSON.parse(event.data);
      const box = document.querySelector(`#step-${CSS.escape(data.stepId)} [data-live-text]`);
      if (!box) return;
      const key = `${data.attempt}/${data.turn || 0}/${data.repair || 0}`;
      if (streams[data.stepId] !== key) { streams[data.stepId] = key; box.textContent = ""; }
      box.hidden = false;
      box.textContent += data.text;
      box.scrollTop = box.scrollHeight;
    });
    source.addEventListener("run", (event) => {
      const data = JSON.parse(event.data);
      if (data.status) setRunStatus(data.status);
      if (Array.isArray(data.steps) || TERMINAL.includes(data.status)) {
        // The final event: show the finished run in full (outputs, costs, rerun forms).
        source.close();
        window.setTimeout(() => window.location.reload(), 400);
      }
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        document.getElementById("live-note").textContent = "Live updates stopped; reload the page.";
      }
    });
  }

  // Schedules: pause, resume, trigger now.
  document.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const row = button.closest("tr"), message = row.querySelector(".action-msg");
      busy(button, true);
      try {
        await api("POST", button.dataset.action, button.dataset.label === "triggered" ? undefined : { note: `${button.dataset.label} in the inspector` });
        message.textContent = button.dataset.label === "triggered" ? "Triggered: a run is starting." : `Schedule ${button.dataset.label}.`;
        if (button.dataset.label !== "triggered") window.setTimeout(() => window.location.reload(), 300);
      } catch (e) {
        message.textContent = `Failed: ${e.message}`;
      } finally { busy(button, false); }
    });
  });

  // Preview: sample-data toggle, JSON checked before sending, warnings, step detail.
  const previewForm = document.getElementById("preview-form");
  if (previewForm) {
    const area = document.getElementById("preview-input"), box = document.getElementById("preview-input-error");
    const result = document.getElementById("preview-result"), body = document.getElementById("preview-body");
    previewForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const useSample = document.getElementById("use-sample").checked;
      const parsed = readJson(area, box, { allowEmpty: useSample });
      if (!parsed.ok) { area.focus(); return; }
      const request = { useSampleData: useSample };
      if (!parsed.empty) request.input = parsed.value;
      const button = document.getElementById("preview-submit"); busy(button, true);
      result.hidden = false; result.setAttribute("aria-busy", "true");
      body.replaceChildren(el("p", { role: "status" }, "Running the preview…"));
      try {
        const data = await api("POST", `/api/workflows/${encodeURIComponent(previewForm.dataset.slug)}/preview`, request);
        body.replaceChildren(renderPreview(data.preview));
      } catch (e) {
        body.replaceChildren(el("p", { class: "banner error", role: "alert" }, `Preview refused: ${e.message}`));
      } finally { busy(button, false); result.setAttribute("aria-busy", "false"); }
    });
  }

  function renderPreview(p) {
    const t = p.tokenEstimates || {};
    const parts = [
      el("p", { id: "preview-status" }, "Status: ", badge(p.status),
         ` · ${ms(p.durationMs)} · ${t.inputTokens || 0}→${t.outputTokens || 0} tokens · est. ${money(t.estimatedCost)}`,
         p.usedSampleData ? " · sample data used" : ""),
    ];
    for (const warning of p.warnings || []) parts.push(el("p", { class: "banner warning", role: "alert" }, warning));
    if (p.error) parts.push(el("p", { class: "banner error", role: "alert" }, `${p.error.type || "error"}: ${p.error.message || ""}`));
    parts.push(jsonBlock("Input", p.input), jsonBlock("Output", p.output, true));
    const list = el("ol", { class: "timeline" });
    for (const s of p.steps || []) {
      const bodyParts = [];
      for (const w of s.warnings || []) bodyParts.push(el("p", { class: "banner warning" }, w));
      if (s.error) bodyParts.push(el("p", { class: "banner error" }, `${s.error.type || "error"}: ${s.error.message || ""}`));
      if (s.rendered) {
        bodyParts.push(el("h4", {}, "Rendered prompt"));
        for (const [name, text] of Object.entries(s.rendered)) {
          if (text === null || text === undefined) continue;
          bodyParts.push(typeof text === "string"
            ? el("div", { class: "text-block" }, el("h5", {}, name), el("pre", { class: "wrap", tabindex: "0" }, text))
            : jsonBlock(name, text));
        }
      }
      bodyParts.push(jsonBlock("Input", s.input), jsonBlock("Output", s.output, true));
      list.append(el("li", { class: "step", "data-step-id": s.stepId, "data-status": s.status },
        el("details", {},
          el("summary", {}, el("span", { class: "step-name" }, s.name || s.stepId),
             el("span", { class: "type" }, s.type), badge(s.status),
             el("span", { class: "step-facts" }, ms(s.durationMs), ` ${s.attempts} attempt${s.attempts === 1 ? "" : "s"}`,
                ` ${s.tokensIn}→${s.tokensOut} tok`, ` ${money(s.cost)}`, s.model ? ` ${s.model}` : "")),
          el("div", { class: "step-body" }, bodyParts))));
    }
    parts.push(el("h3", {}, "Steps"), list);
    return el("div", {}, parts);
  }
})();
