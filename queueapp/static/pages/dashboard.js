/* The dashboard: every 5 s reads the queue figures and worker liveness (/api/jobs/stats) and the running
   jobs' progress (/api/jobs/?status=running), updates bars and figures in place, and re-renders the tables
   from the server when any job changed status (a job started, ended, or was added). */
(function () {
  "use strict";

  const POLL_MS = 5000;
  const HIDDEN_POLL_MS = 30000;
  const Jobsite = window.Jobsite;
  const root = document.querySelector("[data-dashboard]");
  if (!root) return;

  let signature = null;
  let timer = null;

  function countsSignature(stats) {
    return JSON.stringify([stats.total, stats.by_status]);
  }

  function workersState(workers) {
    if (workers === null || workers === undefined) return "unknown";
    return workers.length ? "alive:" + workers.map((w) => w.cluster_id + w.status).sort().join(",") : "none";
  }

  function shownWorkersState() {
    const node = document.querySelector("[data-workers]");
    return node ? node.dataset.workers : "";
  }

  function updateRow(job) {
    const row = document.querySelector('tr[data-job-id="' + job.id + '"]');
    if (!row) return;
    const bar = row.querySelector("[data-bar]");
    if (bar) {
      bar.querySelector(".bar-fill").style.width = job.percentage + "%";
      bar.classList.toggle("indeterminate", job.status === "running" && !job.progress_total);
      if (job.progress_total) bar.setAttribute("aria-valuenow", String(job.percentage));
      bar.setAttribute("aria-valuetext", job.percentage + "%" +
        (job.progress_total ? " (" + job.progress_done + " of " + job.progress_total + ")" : ""));
    }
    const text = row.querySelector("[data-bar-text]");
    if (text) {
      text.textContent = job.percentage + "%" + (job.progress_total ? " · " + job.progress_done + "/" + job.progress_total : "");
    }
    const message = row.querySelector("[data-message]");
    if (message && job.message !== undefined) message.textContent = job.message;
    const badge = row.querySelector("[data-status-badge]");
    if (badge && job.cancel_requested && !badge.textContent.includes("cancelling")) badge.textContent += " (cancelling)";
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  function poll() {
    const running = "/api/jobs/?status=running" + (root.dataset.kind ? "&kind=" + encodeURIComponent(root.dataset.kind) : "");
    Promise.all([Jobsite.api("/api/jobs/stats"), Jobsite.api(running)])
      .then(function (responses) {
        const [stats, jobs] = responses;
        if (Jobsite.isLoggedOut(stats)) {
          const note = document.createElement("p");
          note.className = "alert alert-warning";
          note.setAttribute("role", "alert");
          Jobsite.sessionEnded(note);
          root.prepend(note);
          return; // stop polling: every further call would fail the same way
        }
        if (stats.ok) {
          Object.keys(stats.data).forEach(function (name) {
            const node = root.querySelector('[data-figure="' + name + '"]');
            if (node) node.textContent = String(stats.data[name]);
          });
          const running = root.querySelector('[data-figure="running"]');
          if (running) running.textContent = String(stats.data.by_status.running);
          const succeeded = root.querySelector('[data-figure="succeeded"]');
          if (succeeded) succeeded.textContent = String(stats.data.by_status.succeeded);
          const next = countsSignature(stats.data);
          const workersChanged = shownWorkersState() !== workersState(stats.data.workers).split(":")[0];
          if ((signature !== null && next !== signature) || workersChanged) Jobsite.refreshSections();
          signature = next;
        }
        if (jobs.ok) jobs.data.results.forEach(updateRow);
        schedule();
      })
      .catch(schedule);
  }

  /* Durations of running jobs keep counting between polls. */
  setInterval(function () {
    document.querySelectorAll("[data-running-since]").forEach(function (cell) {
      const since = Date.parse(cell.dataset.runningSince);
      if (!isNaN(since)) cell.textContent = Jobsite.duration((Date.now() - since) / 1000);
    });
  }, 1000);

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { clearTimeout(timer); poll(); }
  });

  poll();
})();
