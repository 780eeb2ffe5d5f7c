/* The promotions page: turns the pasted batch into {"batch": [...]}, maps the API's per-entry errors back
   to line numbers, lists the started jobs, and keeps the queue figures current. */
(function () {
  "use strict";

  const Jobsite = window.Jobsite;
  const STATS_MS = 10000;
  const form = document.getElementById("promotion-batch");

  function parseLines(text) {
    const entries = [];
    const lines = [];
    const problems = [];
    text.split(/\r?\n/).forEach(function (raw, index) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) return;
      const parts = line.split(/[\s,;]+/).filter(Boolean);
      if (parts.length < 2 || parts.length > 3) {
        problems.push("Line " + (index + 1) + ": expected a listing id and an ad rate (and optionally a campaign id), got '" + line + "'.");
        return;
      }
      const entry = { listing_id: parts[0], ad_rate: parts[1] };
      if (parts[2]) entry.campaign_id = parts[2];
      entries.push(entry);
      lines.push(index + 1);
    });
    return { entries: entries, lines: lines, problems: problems };
  }

  let sentLines = [];

  form.jobsiteBuild = function () {
    const parsed = parseLines(form.elements.batch.value);
    if (parsed.problems.length) throw { errors: { batch: parsed.problems } };
    if (!parsed.entries.length) throw { errors: { batch: ["Paste at least one line: listing id, ad rate."] } };
    sentLines = parsed.lines;
    return { batch: parsed.entries };
  };

  /* Per-entry errors ({"batch": [{}, {"ad_rate": [...]}]}, or keyed by index: {"batch": {"1": {...}}})
     become "Line 3: ad_rate: ..." under the text area. */
  form.jobsiteMapErrors = function (errors) {
    const batch = errors && errors.batch;
    if (!batch || typeof batch !== "object") return errors;
    const pairs = Array.isArray(batch) ? batch.map((entry, index) => [index, entry])
      : Object.keys(batch).map((key) => [Number(key), batch[key]]);
    if (pairs.some((pair) => typeof pair[1] === "string" || isNaN(pair[0]))) return errors;
    const messages = [];
    pairs.forEach(function (pair) {
      const [index, entry] = pair;
      Jobsite.flattenErrors(entry).forEach(function (flat) {
        messages.push("Line " + (sentLines[index] || index + 1) + ": " + (flat[0] ? flat[0] + ": " : "") + flat[1].join(" "));
      });
    });
    return Object.assign({}, errors, { batch: messages });
  };

  form.addEventListener("jobsite:started", function (event) {
    event.preventDefault(); // several jobs: list them here instead of opening one
    const data = event.detail.response.data;
    const box = form.querySelector("[data-started]");
    const list = document.createElement("ul");
    list.className = "started-list";
    (data.promotions || []).forEach(function (promotion) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/jobs/" + promotion.id + "/";
      link.textContent = "Listing " + promotion.listing_id + " at " + promotion.ad_rate + " %";
      item.appendChild(link);
      if (promotion.duplicate) item.appendChild(document.createTextNode(" (already pending: its existing job)"));
      list.appendChild(item);
    });
    form.querySelector("[data-form-status]").textContent = data.message || "Queued.";
    box.replaceChildren(list);
    box.hidden = false;
    form.elements.batch.value = "";
    refreshStats();
  });

  function refreshStats() {
    Jobsite.api("/api/ebay/promotions/stats").then(function (response) {
      if (!response.ok) return;
      Object.keys(response.data).forEach(function (name) {
        const node = document.querySelector('[data-stat="' + name + '"]');
        if (node) node.textContent = String(response.data[name]);
      });
    }).catch(function () { /* the next round tries again */ });
  }

  setInterval(function () { if (!document.hidden) refreshStats(); }, STATS_MS);
})();
