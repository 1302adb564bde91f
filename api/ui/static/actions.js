// PromptPilot inspector: the pages' actions (approve and reject, the definition editor, new
// triggers), each through the JSON API with the session cookie and CSRF header (see ui.js).
"use strict";
(function () {
  const { api, el, busy, showError, readJson } = window.PromptPilot;

  // Approve or reject a waiting step, with an optional comment (the API's approval routes).
  document.querySelectorAll("form.approval-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const decision = event.submitter && event.submitter.value === "reject" ? "reject" : "approve";
      const box = form.querySelector(".field-error"), comment = form.querySelector("textarea").value.trim();
      form.querySelectorAll("button").forEach((b) => busy(b, true));
      try {
        await api("POST", `/api/workflows/runs/${form.dataset.runId}/steps/${encodeURIComponent(form.dataset.stepId)}/${decision}?wait=2`,
                  comment ? { comment } : {});
        window.location.reload();
      } catch (e) {
        showError(null, box, `${decision === "approve" ? "Approval" : "Rejection"} refused: ${e.message}`);
        form.querySelectorAll("button").forEach((b) => busy(b, false));
      }
    });
  });

  // The server's problems, each at its JSON pointer; with an editor, a pointer is a button
  // that selects that place in the text (or the nearest enclosing value that exists).
  function showProblems(box, message, problems, area) {
    const list = el("ul", {}, (problems || []).map((p) => {
      const pointer = p.pointer || "/";
      const where = area ? el("button", { type: "button", class: "pointer" }, el("code", {}, pointer))
                         : el("code", {}, pointer);
      if (area) {
        where.addEventListener("click", () => {
          const span = locate(area.value, p.pointer || "");
          area.focus();
          if (span) area.setSelectionRange(span[0], span[1]);
        });
      }
      return el("li", { "data-pointer": p.pointer || "" }, where, ": ", p.message || "");
    }));
    box.replaceChildren(el("p", {}, message), list);
    box.hidden = false;
  }

  // [start, end] of the value at a JSON pointer in JSON text, or of its nearest ancestor.
  function locate(text, pointer) {
    const want = pointer.split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    const found = new Map();
    let i = 0;
    const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
    const string = () => {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      return JSON.parse(text.slice(start, ++i));
    };
    const members = (close, each) => {
      i++; ws();
      if (text[i] === close) { i++; return; }
      for (;;) { each(); ws(); if (text[i++] !== ",") return; }
    };
    const value = (path) => {
      ws();
      const start = i;
      if (text[i] === "{") members("}", () => { ws(); const k = string(); ws(); i++; value([...path, k]); });
      else if (text[i] === "[") { let n = 0; members("]", () => value([...path, String(n++)])); }
      else if (text[i] === '"') string();
      else while (i < text.length && !/[\s,\]}]/.test(text[i])) i++;
      found.set(JSON.stringify(path), [start, i]);
    };
    try { value([]); } catch (e) { return null; }
    for (let n = want.length; n >= 0; n--) {
      const span = found.get(JSON.stringify(want.slice(0, n)));
      if (span) return span;
    }
    return null;
  }

  // Definition editor: create (POST) or a new version (PUT), checked by the server.
  const definitionForm = document.getElementById("definition-form");
  if (definitionForm) {
    const area = document.getElementById("definition"), box = document.getElementById("definition-problems");
    definitionForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      let value;
      try { value = JSON.parse(area.value); } catch (e) {
        area.setAttribute("aria-invalid", "true");
        showProblems(box, `Not valid JSON: ${e.message}`, []); area.focus(); return;
      }
      const slug = definitionForm.dataset.slug, button = document.getElementById("definition-save");
      busy(button, true);
      try {
        const data = slug ? await api("PUT", `/api/workflows/${encodeURIComponent(slug)}`, value)
                          : await api("POST", "/api/workflows", value);
        window.location.assign(`/ui/workflows/${encodeURIComponent(data.workflow.slug)}`);
      } catch (e) {
        area.setAttribute("aria-invalid", "true");
        showProblems(box, `Not saved: ${e.message}`, e.problems, area); busy(button, false);
      }
    });
  }

  // New trigger: a schedule (then the list shows its next fire times) or a webhook (its
  // secret is in the creation answer only, so it is shown here once).
  const triggerForm = document.getElementById("trigger-form");
  if (triggerForm) {
    const type = document.getElementById("t-type"), schedule = document.getElementById("t-schedule");
    const sync = () => { schedule.hidden = type.value !== "scheduled"; };
    type.addEventListener("change", sync); sync();
    triggerForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const area = document.getElementById("t-input"), box = document.getElementById("t-error");
      const parsed = readJson(area, box, { allowEmpty: true });
      if (!parsed.ok) { area.focus(); return; }
      const body = { workflowSlug: document.getElementById("t-workflow").value,
        name: document.getElementById("t-name").value.trim(), type: type.value,
        input: parsed.value || {}, config: {} };
      if (type.value === "scheduled") {
        const cron = document.getElementById("t-cron").value.trim(), every = document.getElementById("t-every").value;
        if (cron) body.config.cronExpressions = [cron];
        if (every) body.config.intervals = [{ everySeconds: Number(every) }];
        body.config.timezone = document.getElementById("t-timezone").value.trim() || "UTC";
      }
      const button = triggerForm.querySelector('button[type="submit"]'); busy(button, true);
      try {
        const data = await api("POST", "/api/triggers", body);
        const t = data.trigger;
        if (t.type !== "webhook") { window.location.reload(); return; }
        const done = document.getElementById("trigger-created");
        const url = new URL(t.webhookUrl || `/api/webhooks/${t.id}`, window.location.origin).href;
        done.replaceChildren(el("div", { class: "secret-once", role: "status" },
          el("p", {}, el("strong", {}, `Webhook '${t.name}' created. `),
             "Copy its signing secret now: it is shown this once and never again."),
          el("dl", { class: "facts" }, el("dt", {}, "URL"), el("dd", {}, el("code", {}, url)),
             el("dt", {}, "Secret"), el("dd", {}, el("code", { id: "webhook-secret" }, t.webhookSecret || ""))),
          el("a", { class: "button secondary", href: "/ui/triggers" }, "Done")));
        done.hidden = false; triggerForm.hidden = true;
      } catch (e) {
        showProblems(box, `Not created: ${e.message}`, e.problems); busy(button, false);
      }
    });
  }
})();
