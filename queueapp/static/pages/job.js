/* The job page: polls /api/jobs/{id}/status every 2 s while the job is active (every 10 s while the tab
   is hidden), stops when the job ends, and re-renders history, errors and result from the server when the
   status changes. Cancel and retry go through the API. */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 10000;
  const MAX_BACKOFF_MS = 30000;
  // History and errors change between status changes too (milestones, retries): refresh them every N polls.
  const REFRESH_EVERY = 5;

  const Jobsite = window.Jobsite;
  const data = JSON.parse(document.getElementById("job-data").textContent);
  const card = document.getElementById("progress");
  const field = (name) => card.querySelector('[data-field="' + name + '"]');
  const when = (name) => card.querySelector('[data-when="' + name + '"]');
  const baseTitle = document.title;

  let state = data.status;
  let receivedAt = Date.now();
  let timer = null;
  let polls = 0;
  let failures = 0;
  let lastKindStep = -1;

  function setText(name, text) {
    const node = field(name);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function elapsedNow() {
    if (state.elapsed_seconds === null || state.elapsed_seconds === undefined) return null;
    // Between polls a running job's clock keeps going; a finished one's is fixed.
    return state.status === "running" ? state.elapsed_seconds + (Date.now() - receivedAt) / 1000 : state.elapsed_seconds;
  }

  /* The kind's own steps: the status's step number (ctx.progress(step=N)); for handlers that only say it
     in words, a message like "Step 2 of 5: ..." or one naming the step. */
  function currentKindStep(s, names) {
    if (s.step && s.step.number) return Math.min(names.length, s.step.number) - 1;
    const match = /step\s+(\d+)\s+of\s+(\d+)/i.exec(s.message || "");
    if (match) return Math.min(names.length, Number(match[1])) - 1;
    const message = (s.message || "").toLowerCase();
    for (let i = names.length - 1; i >= 0; i--) {
      if (message.includes(names[i].toLowerCase())) return i;
    }
    if (s.status === "running") return Math.max(0, lastKindStep);
    return lastKindStep;
  }

  function renderSteps(s) {
    const list = card.querySelector(".steps");
    const items = Array.from(list.querySelectorAll("li"));
    let current;
    let finalLabel = null;
    if (list.dataset.steps === "kind") {
      current = s.status === "succeeded" ? items.length : currentKindStep(s, data.steps);
      lastKindStep = Math.max(lastKindStep, current);
    } else {
      current = { queued: 0, waiting: 0, running: 1 }[s.status];
      if (current === undefined) {
        current = s.status === "succeeded" ? 3 : 2;
        finalLabel = { succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" }[s.status];
      }
      items[2].querySelector(".step-name").textContent = finalLabel || "Finished";
    }
    const stopped = s.status === "failed" || s.status === "cancelled";
    items.forEach(function (item, index) {
      let stateName;
      if (index < current) stateName = "done";
      else if (index === current) stateName = stopped ? "failed" : "current";
      else stateName = "todo";
      item.className = "step step-" + stateName;
      if (stateName === "current") item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
      item.querySelector(".step-state").textContent =
        { done: "(done)", current: "(in progress)", failed: "(stopped here)", todo: "(not started)" }[stateName];
    });
  }

  function render(s) {
    const badge = card.querySelector("[data-status-badge]");
    const label = s.status.charAt(0).toUpperCase() + s.status.slice(1);
    badge.textContent = label + (s.cancel_requested && s.status === "running" ? " (cancelling)" : "");
    badge.className = "badge badge-" + s.status;

    const bar = card.querySelector("[data-bar]");
    bar.className = "bar big status-" + s.status + (s.status === "running" && !s.progress_total ? " indeterminate" : "");
    bar.setAttribute("aria-valuenow", String(s.percentage));
    bar.setAttribute("aria-valuetext", s.percentage + "%" + (s.progress_total ? " (" + s.progress_done + " of " + s.progress_total + ")" : ""));
    bar.querySelector(".bar-fill").style.width = s.percentage + "%";
    setText("percentage", s.percentage + "%");
    setText("done_total", s.progress_total
      ? s.progress_done.toLocaleString() + " of " + s.progress_total.toLocaleString()
      : s.progress_done.toLocaleString() + " done");
    setText("message", s.message || "");
    setText("elapsed", Jobsite.duration(elapsedNow()));
    setText("rate", Jobsite.rate(s.rate_per_second));
    setText("eta", s.eta_seconds === null || s.eta_seconds === undefined ? "—" : Jobsite.duration(s.eta_seconds));
    setText("attempts", s.attempts ? s.attempts + " of " + s.max_attempts : "not started (up to " + s.max_attempts + ")");

    when("counts").hidden = !(s.succeeded_count || s.failed_count);
    setText("counts", s.succeeded_count.toLocaleString() + " / " + s.failed_count.toLocaleString());
    const next = when("next-attempt");
    next.hidden = !s.next_attempt_at;
    if (s.next_attempt_at) {
      const shown = field("next_attempt").querySelector("time");
      if (!shown || shown.getAttribute("datetime") !== s.next_attempt_at) {
        field("next_attempt").replaceChildren(Jobsite.timeElement(s.next_attempt_at));
      }
    }

    const active = Jobsite.isActive(s.status);
    when("active").hidden = !active;
    when("error").hidden = !s.error || s.status === "succeeded";
    setText("error-title", s.status === "failed" ? "The job failed." : "Last error:");
    setText("error", s.error || "");

    card.querySelector('[data-action="cancel"]').hidden = !active || s.cancel_requested;
    const retryable = s.status === "failed" || s.status === "cancelled";
    card.querySelector('[data-action="retry"]').hidden = !retryable;
    card.querySelector('[data-action="retry-from-start"]').hidden = !retryable || !data.retry_from_start;

    renderSteps(s);
    document.title = (active ? s.percentage + "% · " : label + " · ") + baseTitle;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  function accept(next) {
    const changed = next.status !== state.status || next.attempts !== state.attempts;
    state = next;
    receivedAt = Date.now();
    render(state);
    return changed;
  }

  function poll() {
    timer = null;
    Jobsite.api(data.status_url)
      .then(function (response) {
        if (Jobsite.isLoggedOut(response)) {
          Jobsite.sessionEnded(field("poll-state"));
          return;
        }
        if (response.status === 404) {
          setText("poll-state", "This job no longer exists (finished jobs are deleted after the retention period).");
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        failures = 0;
        polls++;
        const changed = accept(response.data);
        const active = Jobsite.isActive(state.status);
        if (changed || !active || polls % REFRESH_EVERY === 0) Jobsite.refreshSections();
        if (active) {
          setText("poll-state", "");
          schedule(document.hidden ? HIDDEN_POLL_MS : POLL_MS);
        } else {
          setText("poll-state", "The job has ended; this page no longer refreshes.");
        }
      })
      .catch(function () {
        failures++;
        const delay = Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, failures));
        setText("poll-state", "Cannot reach the server; trying again in " + Math.round(delay / 1000) + " s. The job is not affected.");
        schedule(delay);
      });
  }

  function startPolling() {
    if (Jobsite.isActive(state.status)) schedule(POLL_MS);
  }

  function act(url, body, describe) {
    const result = field("action-result");
    result.textContent = "Sending…";
    card.querySelectorAll("[data-action]").forEach((button) => (button.disabled = true));
    Jobsite.api(url, { method: "POST", body: body })
      .then(function (response) {
        if (Jobsite.isLoggedOut(response)) { Jobsite.sessionEnded(result); return; }
        if (response.ok) {
          // Feature endpoints (an import's retry) wrap the job's status in their own document.
          accept(response.data.job && response.data.job.status ? response.data.job : response.data);
          result.textContent = describe(response);
          Jobsite.refreshSections();
          if (!timer) startPolling();
        } else {
          result.textContent = (response.data && response.data.detail) || "The server answered " + response.status + ".";
          if (!timer) poll();
        }
      })
      .catch(() => (result.textContent = "The server could not be reached; nothing was changed. Try again."))
      .finally(() => card.querySelectorAll("[data-action]").forEach((button) => (button.disabled = false)));
  }

  card.querySelector('[data-action="cancel"]').addEventListener("click", function () {
    if (!window.confirm("Cancel this job? Work already done is kept, and you can retry it later.")) return;
    act(data.cancel_url, undefined, (response) =>
      response.status === 202
        ? "Cancel requested: the job stops at its next progress report."
        : "Cancelled before it started.");
  });
  card.querySelector('[data-action="retry"]').addEventListener("click", function () {
    act(data.retry_url, { from_start: false }, () => "Queued again; it resumes from its last checkpoint.");
  });
  card.querySelector('[data-action="retry-from-start"]').addEventListener("click", function () {
    act(data.retry_url, { from_start: true }, () => "Queued again from the start.");
  });

  // A kind's own follow-up that starts a new job (a category fetch's "fetch the failed ones again").
  // Delegated: the button lives in a section that is re-rendered from the server.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-retry-failed]");
    if (!button) return;
    const note = button.parentNode.querySelector("[data-retry-failed-result]");
    button.disabled = true;
    note.textContent = "Starting…";
    Jobsite.api(button.dataset.retryFailed, { method: "POST" })
      .then(function (response) {
        const id = Jobsite.jobIdOf(response.data);
        if (response.ok && id) {
          note.textContent = (response.data.message || "Started.") + " Opening it…";
          location.assign("/jobs/" + id + "/");
        } else if (Jobsite.isLoggedOut(response)) {
          Jobsite.sessionEnded(note);
        } else {
          note.textContent = (response.data && response.data.detail) || "The server answered " + response.status + ".";
          button.disabled = false;
        }
      })
      .catch(function () {
        note.textContent = "The server could not be reached; nothing was started.";
        button.disabled = false;
      });
  });

  document.addEventListener("visibilitychange", function () {
    // Back on the tab: show the current state at once rather than after the slow hidden-tab delay.
    if (!document.hidden && timer && Jobsite.isActive(state.status)) schedule(0);
  });

  setInterval(function () {
    if (state.status === "running") setText("elapsed", Jobsite.duration(elapsedNow()));
  }, 1000);

  render(state);
  startPolling();
})();
