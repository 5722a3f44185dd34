// Dashboard pages. Each one fetches the admin API's JSON (with the session cookie) and
// shows it; text is always set through textContent, never parsed as HTML.
"use strict";

(() => {
  const app = document.getElementById("app");
  const page = app.dataset.page;

  // --- helpers ------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c == null) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  async function api(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (response.status === 401) {
      window.location.assign(`/ui/login?next=${encodeURIComponent(window.location.pathname)}`);
      throw new Error("signed out");
    }
    if (!response.ok) {
      let message = `${response.status}`;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // A figure with its exact API value kept in data-value (tests and tooltips read it).
  function stat(name, label, shown, exact) {
    return h("div", { class: "stat", "data-stat": name },
      h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-value", "data-value": exact == null ? shown : String(exact), title: exact == null ? null : String(exact) }, shown));
  }

  function money(value) {
    return h("span", { class: "money", "data-value": value, title: `$${value}` }, Fmt.money(value));
  }

  function table(headers, rows, empty) {
    if (!rows.length) return h("p", { class: "muted" }, empty || "Nothing yet.");
    return h("table", {},
      h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)))),
      h("tbody", {}, rows));
  }

  function section(title, ...children) {
    return h("section", { class: "card" }, h("h2", {}, title), ...children);
  }

  function chartBox(id) {
    return h("div", { class: "chart-box", id });
  }

  function today() { return new Date().toISOString().slice(0, 10); }
  function monthStart() { return today().slice(0, 8) + "01"; }
  function daysAgo(n) { return new Date(Date.now() - n * 86400000).toISOString().slice(0, 10); }

  function jobLink(id) {
    if (id == null) return h("span", { class: "muted" }, "(none)");
    return h("a", { href: `/ui/jobs/${encodeURIComponent(id)}` }, id);
  }

  function fail(error) {
    if (error.message === "signed out") return;
    app.replaceChildren(h("p", { class: "error" }, `Could not load: ${error.message}`));
  }

  function markNav() {
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.nav.split(" ").includes(page)) a.classList.add("current");
    }
  }

  // Run `load` now and again every `ms` (it may return a different delay, or 0 to stop).
  function refreshing(load, ms) {
    const tick = async () => {
      let next = ms;
      try { next = (await load()) ?? ms; } catch (error) { fail(error); return; }
      if (next > 0) window.setTimeout(tick, next);
    };
    tick();
  }

  // --- overview -----------------------------------------------------------------------

  async function overview() {
    const since = daysAgo(29);
    const [days, models, jobs] = await Promise.all([
      api(`/admin/spend?group_by=day&start=${since}`),
      api(`/admin/spend?group_by=model&start=${monthStart()}`),
      api(`/admin/spend?group_by=job&start=${monthStart()}`),
    ]);
    const todayRow = days.rows.find((r) => r.group === today()) || { cost_usd: "0", requests: 0 };
    const monthRequests = models.rows.reduce((n, r) => n + r.requests, 0);
    const byDay = new Map(days.rows.map((r) => [r.group, r]));
    const points = [];
    for (let i = 29; i >= 0; i--) {
      const day = daysAgo(i);
      const row = byDay.get(day) || { cost_usd: "0", requests: 0 };
      points.push({ label: day.slice(5), value: Number(row.cost_usd), title: `${day}: ${Fmt.money(row.cost_usd)} (${Fmt.int(row.requests)} requests)` });
    }
    const daily = chartBox("chart-days");
    const modelChart = chartBox("chart-models");
    const jobChart = chartBox("chart-jobs");
    app.replaceChildren(
      h("h1", {}, "Overview"),
      h("div", { class: "stats" },
        stat("today", "Spend today", Fmt.money(todayRow.cost_usd), todayRow.cost_usd),
        stat("today_requests", "Requests today", Fmt.int(todayRow.requests), todayRow.requests),
        stat("month", "Spend this month", Fmt.money(models.total_cost_usd), models.total_cost_usd),
        stat("month_requests", "Requests this month", Fmt.int(monthRequests), monthRequests),
        stat("days30", "Last 30 days", Fmt.money(days.total_cost_usd), days.total_cost_usd)),
      section("Spend per day, last 30 days", daily),
      h("div", { class: "two" },
        section("This month by model", modelChart),
        section("This month by job (top 10)", jobChart)),
      section("This month by model, in detail", table(
        [["Model"], ["Requests", "num"], ["Cache hits", "num"], ["Fallbacks", "num"], ["Tokens in / out", "num"], ["Cost", "num"]],
        models.rows.map((r) => h("tr", {},
          h("td", {}, r.group || "(none)"), h("td", { class: "num" }, Fmt.int(r.requests)),
          h("td", { class: "num" }, Fmt.int(r.cache_hits)), h("td", { class: "num" }, Fmt.int(r.fallbacks)),
          h("td", { class: "num" }, `${Fmt.int(r.prompt_tokens)} / ${Fmt.int(r.completion_tokens)}`),
          h("td", { class: "num" }, money(r.cost_usd)))),
        "No spend this month.")),
    );
    Chart.series(daily, { points, kind: "columns", format: Fmt.moneyNumber });
    const bars = (rows) => rows.slice(0, 10).map((r) => ({ label: r.group || "(none)", value: Number(r.cost_usd), text: Fmt.money(r.cost_usd) }));
    Chart.bars(modelChart, { items: bars(models.rows), empty: "No spend this month." });
    Chart.bars(jobChart, { items: bars(jobs.rows.filter((r) => r.group != null)), empty: "No job this month." });
  }

  // --- jobs ---------------------------------------------------------------------------

  function jobsPage() {
    refreshing(async () => {
      const { jobs } = await api("/admin/jobs?limit=200");
      app.replaceChildren(
        h("h1", {}, "Jobs"),
        section("Most recently active first", table(
          [["Job"], ["Requests", "num"], ["Cost", "num"], ["Cost / request", "num"], ["Cache hits", "num"], ["Fallbacks", "num"], ["Failed", "num"], ["Last request"]],
          jobs.map((j) => h("tr", { "data-job": j.job_id },
            h("td", {}, jobLink(j.job_id)), h("td", { class: "num" }, Fmt.int(j.requests)),
            h("td", { class: "num" }, money(j.cost_usd)), h("td", { class: "num" }, money(j.cost_per_request_usd)),
            h("td", { class: "num" }, Fmt.pct(j.cache_hits, j.requests)), h("td", { class: "num" }, Fmt.int(j.fallbacks)),
            h("td", { class: j.failed ? "num bad" : "num" }, Fmt.int(j.failed)), h("td", { class: "nowrap" }, Fmt.time(j.last_at)))),
          "No request has carried a job id yet.")),
      );
    }, 5000);
  }

  // --- one job ------------------------------------------------------------------------

  const LIVE_WINDOW_MS = 120000;

  function bucketFor(job) {
    const span = Date.parse(job.last_at) - Date.parse(job.first_at);
    if (span <= 3 * 3600000) return "minute";
    if (span <= 7 * 86400000) return "hour";
    return "day";
  }

  function bucketLabel(t, bucket) {
    return bucket === "day" ? t.slice(5, 10) : bucket === "hour" ? t.slice(5, 13).replace("T", " ") + "h" : t.slice(11, 16);
  }

  function eventRows(events) {
    return events.map((e) => h("tr", { class: e.error_code || e.status !== 200 ? "bad" : null },
      h("td", { class: "nowrap" }, Fmt.time(e.created_at)), h("td", { class: "nowrap" }, jobLink(e.job_id)), h("td", {}, e.key_id || "–"),
      h("td", {}, e.model && e.model !== e.model_requested ? `${e.model_requested} → ${e.model}` : e.model_requested),
      h("td", {}, e.deployment || "–"), h("td", { class: "nowrap" }, e.error_code ? `${e.status} ${e.error_code}` : String(e.status)),
      h("td", { class: "num" }, Fmt.int(e.fallbacks)), h("td", { class: "num" }, Fmt.int(e.attempts)),
      h("td", { class: "num" }, `${e.latency_ms} ms`), h("td", { class: "num" }, money(e.cost_usd))));
  }

  const EVENT_HEADERS = [["Time"], ["Job"], ["Key"], ["Model"], ["Deployment"], ["Status"], ["Fallbacks", "num"], ["Attempts", "num"], ["Latency", "num"], ["Cost", "num"]];

  // What the job covered (from the batch runner's request metadata), beside what it sent:
  // pages and documents as the runner's summary.json counts them, re-asks as re-asks.
  function workStats(job) {
    if (!job.pages) {
      return h("p", { class: "muted", id: "job-work" }, "No request of this job named its document and page (only the batch runner sends them): requests only.");
    }
    return h("div", {},
      h("div", { class: "stats", id: "job-work" },
        stat("documents", "Documents", Fmt.int(job.documents), job.documents),
        stat("pages", "Pages", Fmt.int(job.pages), job.pages),
        stat("reasked_pages", "Pages re-asked", Fmt.int(job.reasked_pages), job.reasked_pages)),
      h("p", { class: "muted small", id: "job-work-note" },
        `${Fmt.int(job.requests)} requests for ${Fmt.int(job.pages)} pages of ${Fmt.int(job.documents)} documents; ` +
        `${Fmt.int(job.reasked_pages)} ${job.reasked_pages === 1 ? "page was" : "pages were"} asked again because the first answer was not acceptable. ` +
        "Whether the final answers passed the batch's checks is in the job's summary.json."));
  }

  function jobPage() {
    const id = app.dataset.jobId;
    const path = encodeURIComponent(id);
    refreshing(async () => {
      let job;
      try {
        job = await api(`/admin/jobs/${path}`);
      } catch (error) {
        if (error.status !== 404) throw error;
        app.replaceChildren(h("h1", {}, `Job ${id}`), h("p", { class: "muted" }, "No request has carried this job id yet."));
        return 5000;
      }
      const bucket = bucketFor(job);
      const [timeline, events] = await Promise.all([
        api(`/admin/spend/timeline?job_id=${path}&bucket=${bucket}`),
        api(`/admin/events?job_id=${path}&kind=all&limit=20`),
      ]);
      const live = Date.now() - Date.parse(job.last_at) < LIVE_WINDOW_MS;
      const overTime = chartBox("chart-timeline");
      const byModel = chartBox("chart-models");
      const models = Object.entries(job.models);
      app.replaceChildren(
        h("h1", {}, `Job ${id} `, h("span", { class: live ? "badge live" : "badge", id: "job-state" }, live ? "live" : "idle")),
        h("p", { class: "muted" }, `${Fmt.time(job.first_at)} → ${Fmt.time(job.last_at)}`),
        workStats(job),
        h("div", { class: "stats" },
          stat("cost", "Cost", Fmt.money(job.cost_usd), job.cost_usd),
          // Deferred lines (provider batch APIs, at the batch price) beside interactive calls.
          ...(job.deferred_requests ? [
            stat("deferred_cost", `Deferred (${Fmt.int(job.deferred_requests)})`, Fmt.money(job.deferred_cost_usd), job.deferred_cost_usd),
            stat("interactive_cost", `Interactive (${Fmt.int(job.interactive_requests)})`, Fmt.money(job.interactive_cost_usd), job.interactive_cost_usd),
          ] : []),
          stat("requests", "Requests", Fmt.int(job.requests), job.requests),
          stat("cost_per_request", "Cost per request", Fmt.money(job.cost_per_request_usd), job.cost_per_request_usd),
          stat("cache_hit_rate", "Cache-hit rate", Fmt.pct(job.cache_hits, job.requests), job.cache_hits),
          stat("fallbacks", "Fallbacks", Fmt.int(job.fallbacks), job.fallbacks),
          stat("failed", "Failed requests", Fmt.int(job.failed), job.failed),
          stat("tokens", "Tokens in / out", `${Fmt.int(job.prompt_tokens)} / ${Fmt.int(job.completion_tokens)}`)),
        section(`Cost over time (per ${bucket})`, overTime),
        h("div", { class: "two" },
          section("Cost by model", byModel),
          section("By model", table([["Model"], ["Requests", "num"], ["Cost", "num"]],
            models.map(([name, m]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, Fmt.int(m.requests)), h("td", { class: "num" }, money(m.cost_usd))))))),
        section("Recent fallbacks and errors in this job", table(EVENT_HEADERS, eventRows(events.events), "None.")),
      );
      Chart.series(overTime, {
        kind: timeline.rows.length > 40 ? "line" : "columns",
        format: Fmt.moneyNumber,
        points: timeline.rows.map((r) => ({
          label: bucketLabel(r.t, bucket),
          value: Number(r.cost_usd),
          title: `${Fmt.time(r.t)}: ${Fmt.money(r.cost_usd)}, ${Fmt.int(r.requests)} requests, ${Fmt.int(r.failed)} failed`,
        })),
      });
      Chart.bars(byModel, { items: models.map(([name, m]) => ({ label: name, value: Number(m.cost_usd), text: Fmt.money(m.cost_usd) })) });
      return live ? 2000 : 15000; // refresh fast while the job runs
    }, 2000);
  }

  // --- keys and teams -----------------------------------------------------------------

  function budgetCell(subject) {
    const used = subject.spend.usd;
    if (subject.budget_usd == null) return h("td", {}, money(used), h("span", { class: "muted" }, " (no budget)"));
    const share = Math.min(1, Number(used) / Math.max(Number(subject.budget_usd), 1e-12));
    const meter = h("meter", { min: "0", max: "1", low: "0.75", high: "0.9", optimum: "0", value: share.toFixed(4) });
    return h("td", { class: "budget" }, meter, " ", money(used), " of ", money(subject.budget_usd), h("span", { class: "muted" }, ` (${(share * 100).toFixed(1)}%)`));
  }

  function limits(s) {
    return [h("td", { class: "num" }, s.rpm == null ? "–" : Fmt.int(s.rpm)), h("td", { class: "num" }, s.tpm == null ? "–" : Fmt.int(s.tpm))];
  }

  function keyState(k) {
    if (k.revoked_at) return h("span", { class: "badge bad" }, "revoked");
    if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return h("span", { class: "badge bad" }, "expired");
    return h("span", { class: "badge" }, "active");
  }

  async function keysPage() {
    const { keys, teams } = await api("/admin/budgets");
    const teamName = new Map(teams.map((t) => [t.id, t.name]));
    app.replaceChildren(
      h("h1", {}, "Keys and teams"),
      section("Teams", table([["Team"], ["Budget used"], ["Period"], ["RPM", "num"], ["TPM", "num"]],
        teams.map((t) => h("tr", { "data-team": t.id }, h("td", {}, t.name, h("div", { class: "muted small" }, t.id)), budgetCell(t), h("td", {}, t.budget_period || "lifetime"), ...limits(t))),
        "No team yet.")),
      section("Keys", table([["Key"], ["Team"], ["State"], ["Budget used"], ["Period"], ["RPM", "num"], ["TPM", "num"]],
        keys.map((k) => h("tr", { "data-key": k.id }, h("td", {}, k.name, h("div", { class: "muted small" }, `${k.key_prefix}… · ${k.id}`)),
          h("td", {}, k.team_id ? teamName.get(k.team_id) || k.team_id : "–"), h("td", {}, keyState(k)), budgetCell(k),
          h("td", {}, k.budget_period || "lifetime"), ...limits(k))),
        "No key yet: create one with POST /admin/keys or `nemorouter keys create`.")),
    );
  }

  // --- fallbacks and errors -----------------------------------------------------------

  function eventsPage() {
    refreshing(async () => {
      const [fallbacks, errors] = await Promise.all([
        api("/admin/events?kind=fallback&limit=50"),
        api("/admin/events?kind=error&limit=50"),
      ]);
      app.replaceChildren(
        h("h1", {}, "Fallbacks and errors"),
        section("Recent errors (latest 50)", table(EVENT_HEADERS, eventRows(errors.events), "No failed request.")),
        section("Recent fallbacks (latest 50)", table(EVENT_HEADERS, eventRows(fallbacks.events), "No fallback.")),
      );
    }, 10000);
  }

  markNav();
  const pages = { overview, jobs: jobsPage, job: jobPage, keys: keysPage, events: eventsPage };
  Promise.resolve().then(pages[page]).catch(fail);
})();
