/* Shared by every page: API calls with the session and CSRF token, formatting, refreshing the
   server-rendered sections, and the forms that start jobs (form[data-api]). No build step, no library. */
(function () {
  "use strict";

  const Jobsite = (window.Jobsite = {});
  const ACTIVE = new Set(["queued", "waiting", "running"]);
  Jobsite.isActive = (status) => ACTIVE.has(status);

  Jobsite.csrfToken = function () {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  Jobsite.loginUrl = () => "/login/?next=" + encodeURIComponent(location.pathname + location.search);

  /* One API call. Resolves to {ok, status, data}; rejects only when the network fails. With
     onUploadProgress it uses XMLHttpRequest, the one browser API that reports upload progress. */
  Jobsite.api = function (url, options) {
    options = options || {};
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    let body = options.body;
    if (method !== "GET") headers["X-CSRFToken"] = Jobsite.csrfToken();
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    if (options.onUploadProgress) {
      return new Promise(function (resolve, reject) {
        const xhr = new XMLHttpRequest();
        xhr.open(method, url);
        Object.keys(headers).forEach((name) => xhr.setRequestHeader(name, headers[name]));
        xhr.upload.onprogress = function (event) {
          if (event.lengthComputable) options.onUploadProgress(event.loaded, event.total);
        };
        xhr.onload = function () {
          let data = null;
          try { data = JSON.parse(xhr.responseText); } catch (e) { data = { detail: xhr.statusText }; }
          resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data: data });
        };
        xhr.onerror = () => reject(new Error("network"));
        xhr.send(body);
      });
    }
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" }).then(
      function (response) {
        const type = response.headers.get("Content-Type") || "";
        const parse = type.includes("json") ? response.json() : response.text().then((text) => ({ detail: text }));
        return parse.catch(() => ({ detail: response.statusText })).then((data) => ({
          ok: response.ok, status: response.status, data: data,
        }));
      }
    );
  };

  Jobsite.isLoggedOut = (response) => response.status === 401 || response.status === 403;

  Jobsite.duration = function (seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    seconds = Math.max(0, Number(seconds));
    if (seconds < 60) return seconds.toFixed(1) + " s";
    let minutes = Math.floor(seconds / 60);
    const secs = Math.floor(seconds % 60);
    if (minutes < 60) return minutes + " min " + String(secs).padStart(2, "0") + " s";
    const hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 48) return hours + " h " + String(minutes).padStart(2, "0") + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  };

  Jobsite.rate = function (perSecond) {
    if (!perSecond) return "—";
    const oneDecimal = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
    if (perSecond >= 1) return perSecond.toLocaleString(undefined, oneDecimal) + " /s";
    return (perSecond * 60).toLocaleString(undefined, oneDecimal) + " /min";
  };

  /* Times are rendered in UTC by the server; show them in the reader's own time zone. */
  function localise(node) {
    if (node.dataset.localised) return;
    const when = new Date(node.getAttribute("datetime"));
    if (isNaN(when)) return;
    node.title = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    node.textContent = when.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    node.dataset.localised = "1";
  }

  Jobsite.localTimes = function (root) {
    (root || document).querySelectorAll("time[data-local-time]").forEach(localise);
  };

  Jobsite.timeElement = function (iso) {
    const node = document.createElement("time");
    node.setAttribute("datetime", iso);
    node.setAttribute("data-local-time", "");
    node.textContent = iso;
    localise(node);
    return node;
  };

  /* Re-render the page's [data-refresh] sections from the server: the server's templates stay the one
     place that knows how history, errors and results look. Resolves to false when logged out. */
  Jobsite.refreshSections = function () {
    return fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(
      function (response) {
        if (!response.ok || new URL(response.url).pathname === "/login/") return false;
        return response.text().then(function (html) {
          const fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-refresh][id]").forEach(function (section) {
            const replacement = fresh.getElementById(section.id);
            if (replacement) {
              section.replaceWith(replacement);
              Jobsite.localTimes(replacement);
            }
          });
          document.dispatchEvent(new CustomEvent("jobsite:refreshed"));
          return true;
        });
      }
    ).catch(() => false);
  };

  Jobsite.sessionEnded = function (target) {
    target.replaceChildren(
      document.createTextNode("Your session has ended. "),
      Object.assign(document.createElement("a"), { href: Jobsite.loginUrl(), textContent: "Log in again" }),
      document.createTextNode(" to continue; running jobs are not affected.")
    );
  };

  /* ---- Forms that start jobs ------------------------------------------------------------------------
     <form data-api="/api/..." data-encoding="json|multipart" [data-fixed='{"kind": "..."}']>
     Field names with dots ("params.n") nest in JSON. A 400 answer's messages appear under the field they
     name; the rest above the submit button. A started job opens its page, unless a page script handles
     the "jobsite:started" event and calls preventDefault(). */

  function fieldFor(form, path) {
    return form.querySelector('[data-error-for="' + CSS.escape(path) + '"]') || form.elements.namedItem(path);
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error[data-generated]").forEach((node) => node.remove());
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      const described = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
      if (described.length) input.setAttribute("aria-describedby", described.join(" "));
      else input.removeAttribute("aria-describedby");
    });
    const box = form.querySelector("[data-form-error]");
    if (box) { box.hidden = true; box.replaceChildren(); }
  }

  Jobsite.fieldError = function (form, path, messages) {
    let input = fieldFor(form, path);
    if (input && input.length !== undefined && !input.tagName) input = input[0]; // a radio group
    if (input && input.type === "hidden") input = null;
    if (!input) return false;
    const field = input.closest(".field") || input.parentNode;
    const id = (input.id || path.replace(/\W/g, "-")) + "-error";
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = id;
    note.setAttribute("data-generated", "");
    note.textContent = messages.join(" ");
    field.appendChild(note);
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(input.tagName)) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
    }
    return true;
  };

  Jobsite.formError = function (form, messages) {
    const box = form.querySelector("[data-form-error]");
    const list = document.createElement("ul");
    messages.forEach(function (message) {
      const item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
    });
    box.replaceChildren(list);
    box.hidden = false;
  };

  /* DRF error bodies nest: {"params": {"n": ["..."]}}, {"items": [{}, {"sku": ["..."]}]}. */
  function flatten(errors, prefix, out) {
    if (Array.isArray(errors)) {
      if (errors.every((item) => typeof item === "string")) {
        out.push([prefix, errors]);
      } else {
        errors.forEach((item, index) => flatten(item, prefix + "[" + index + "]", out));
      }
    } else if (errors && typeof errors === "object") {
      Object.keys(errors).forEach(function (key) {
        const generic = key === "non_field_errors" || key === "detail";
        flatten(errors[key], generic ? prefix : prefix ? prefix + "." + key : key, out);
      });
    } else if (errors !== null && errors !== undefined) {
      out.push([prefix, [String(errors)]]);
    }
    return out;
  }

  Jobsite.flattenErrors = (errors) => flatten(errors, "", []);

  Jobsite.showErrors = function (form, errors) {
    const general = [];
    flatten(errors, "", []).forEach(function (pair) {
      const [path, messages] = pair;
      if (!path || !Jobsite.fieldError(form, path, messages)) {
        general.push((path ? path + ": " : "") + messages.join(" "));
      }
    });
    if (general.length) Jobsite.formError(form, general);
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
    else form.querySelector("[data-form-error]").scrollIntoView({ block: "nearest" });
  };

  function setPath(target, path, value) {
    const parts = path.split(".");
    let node = target;
    parts.slice(0, -1).forEach(function (part) {
      if (typeof node[part] !== "object" || node[part] === null) node[part] = {};
      node = node[part];
    });
    node[parts[parts.length - 1]] = value;
  }

  function jsonBody(form) {
    const body = JSON.parse(form.dataset.fixed || "{}");
    Array.from(form.elements).forEach(function (input) {
      if (!input.name || input.disabled || input.type === "submit" || input.type === "button") return;
      if (input.dataset.skip !== undefined) return;
      let value;
      if (input.type === "checkbox") value = input.checked;
      else if (input.type === "radio") { if (!input.checked) return; value = input.value; }
      else if (input.type === "number") value = input.value === "" ? null : Number(input.value);
      else if (input.value === "" && input.dataset.optional !== undefined) return;
      else value = input.value;
      setPath(body, input.name, value);
    });
    return body;
  }

  function multipartBody(form) {
    const body = new FormData();
    const fixed = JSON.parse(form.dataset.fixed || "{}");
    Object.keys(fixed).forEach((key) => body.append(key, fixed[key]));
    Array.from(form.elements).forEach(function (input) {
      if (!input.name || input.disabled || input.type === "submit" || input.type === "button") return;
      if (input.dataset.skip !== undefined) return;
      if (input.type === "file") {
        Array.from(input.files).forEach((file) => body.append(input.name, file, file.name));
      } else if (input.type === "checkbox") {
        body.append(input.name, input.checked ? "true" : "false");
      } else if (input.type === "radio") {
        if (input.checked) body.append(input.name, input.value);
      } else if (!(input.value === "" && input.dataset.optional !== undefined)) {
        body.append(input.name, input.value);
      }
    });
    return body;
  }

  Jobsite.formatBytes = function (bytes) {
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return (unit ? value.toFixed(1) : value) + " " + units[unit];
  };

  /* Checks that save an upload the server would refuse anyway: size and presence of files. */
  function clientChecks(form) {
    let ok = true;
    form.querySelectorAll('input[type="file"]').forEach(function (input) {
      const max = Number(input.dataset.maxBytes || 0);
      if (input.required && !input.files.length) {
        Jobsite.fieldError(form, input.name, ["Choose a file."]);
        ok = false;
      }
      Array.from(input.files).forEach(function (file) {
        if (max && file.size > max) {
          Jobsite.fieldError(form, input.name, [
            file.name + " is " + Jobsite.formatBytes(file.size) + "; the limit is " + Jobsite.formatBytes(max) +
            ". Split the file or remove unused columns and rows.",
          ]);
          ok = false;
        } else if (file.size === 0) {
          Jobsite.fieldError(form, input.name, [file.name + " is empty."]);
          ok = false;
        }
      });
    });
    const custom = new CustomEvent("jobsite:check", { cancelable: true, detail: { form: form } });
    if (!form.dispatchEvent(custom)) ok = false;
    return ok;
  }

  Jobsite.jobIdOf = function (data) {
    if (!data || typeof data !== "object") return null;
    return data.job_id || (data.job && data.job.id) || data.id || null;
  };

  function initForm(form) {
    const status = form.querySelector("[data-form-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      status.textContent = "";
      if (!clientChecks(form)) {
        const first = form.querySelector('[aria-invalid="true"]');
        if (first) first.focus();
        return;
      }
      const multipart = form.dataset.encoding === "multipart";
      const buttons = form.querySelectorAll('button[type="submit"]');
      buttons.forEach((button) => (button.disabled = true));
      status.textContent = multipart ? "Uploading…" : "Starting…";
      let body;
      try {
        // A page script may build the body itself (form.jobsiteBuild); it throws {errors} for bad input.
        body = form.jobsiteBuild ? form.jobsiteBuild(form) : multipart ? multipartBody(form) : jsonBody(form);
      } catch (problem) {
        if (!problem || !problem.errors) throw problem;
        buttons.forEach((button) => (button.disabled = false));
        status.textContent = "Nothing was started: please correct the fields marked below.";
        Jobsite.showErrors(form, problem.errors);
        return;
      }
      const options = { method: "POST", body: body };
      if (multipart) {
        options.onUploadProgress = function (loaded, total) {
          status.textContent = loaded < total
            ? "Uploading… " + Math.floor((loaded * 100) / total) + "% of " + Jobsite.formatBytes(total)
            : "Uploaded; checking the file…";
        };
      }
      Jobsite.api(form.dataset.api, options)
        .then(function (response) {
          if (response.ok) {
            const started = new CustomEvent("jobsite:started", {
              cancelable: true, detail: { form: form, response: response },
            });
            if (!form.dispatchEvent(started)) return;
            const id = Jobsite.jobIdOf(response.data);
            if (id) {
              status.textContent = "Started. Opening its page…";
              location.assign("/jobs/" + id + "/");
              return;
            }
            status.textContent = "Done.";
          } else if (Jobsite.isLoggedOut(response)) {
            status.textContent = "";
            Jobsite.sessionEnded(status);
          } else if (response.status === 400) {
            status.textContent = "Nothing was started: please correct the fields marked below.";
            Jobsite.showErrors(form, form.jobsiteMapErrors ? form.jobsiteMapErrors(response.data) : response.data);
          } else if (response.status === 413) {
            status.textContent = "";
            Jobsite.formError(form, ["The upload is larger than the server accepts."]);
          } else {
            status.textContent = "";
            Jobsite.formError(form, [
              "The server answered " + response.status + ": " +
              ((response.data && response.data.detail) || "unexpected error") + ". Nothing was started; try again.",
            ]);
          }
        })
        .catch(function () {
          status.textContent = "";
          Jobsite.formError(form, ["The server could not be reached. Check your connection and try again."]);
        })
        .finally(() => buttons.forEach((button) => (button.disabled = false)));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Jobsite.localTimes(document);
    document.querySelectorAll("form[data-api]").forEach(initForm);
  });
})();
