// The dashboard's small script: live page refresh (server-sent events), actions through the API with the
// session's CSRF token, the rollout charts (Chart.js, installed from npm at setup) and following logs.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const main = document.getElementById("main");
  let charts = [];

  function toast(text, bad) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.className = bad ? "show bad" : "show";
    setTimeout(() => { box.className = ""; }, 4000);
  }

  async function act(button) {
    const question = button.dataset.confirm;
    if (question && !window.confirm(question)) return;
    button.disabled = true;
    const response = await fetch(button.dataset.act, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: button.dataset.body || "{}",
    });
    let answer = {};
    try { answer = await response.json(); } catch (e) { /* not JSON */ }
    toast(response.ok ? `${button.textContent.trim()}: done` : `${response.status} ${answer.message || answer.error || ""}`,
          !response.ok);
    refresh();
  }

  function drawCharts() {
    charts.forEach((chart) => chart.destroy());
    charts = [];
    const data = document.getElementById("series");
    if (!data || typeof Chart === "undefined") return;
    const series = JSON.parse(data.textContent);
    const labels = series.at.map((t) => new Date(t * 1000).toLocaleTimeString());
    const options = (title, y) => ({animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {title: {display: true, text: title}}, scales: {y}});
    const line = (label, values, color) => ({label, data: values, borderColor: color, backgroundColor: color, spanGaps: true});
    charts.push(new Chart(document.getElementById("chart-success"), {type: "line", options: options("success rate (%)", {suggestedMin: 90, suggestedMax: 100}),
      data: {labels, datasets: [line("canary", series.canary_success, "#d9480f"), line("primary", series.primary_success, "#1971c2")]}}));
    charts.push(new Chart(document.getElementById("chart-latency"), {type: "line", options: options("p99 latency (ms)", {beginAtZero: true}),
      data: {labels, datasets: [line("canary", series.canary_p99, "#d9480f"), line("primary", series.primary_p99, "#1971c2")]}}));
  }

  let refreshing = false, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, {headers: {"X-Fragment": "1"}, credentials: "same-origin"});
      if (response.redirected || response.status === 401) { location.href = "/ui/login"; return; }
      if (response.ok) { main.innerHTML = await response.text(); drawCharts(); document.body.dataset.refreshed = String(Date.now()); }
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (button) { event.preventDefault(); act(button); }
    const out = event.target.closest("button[data-signout]");
    if (out) {
      fetch("/ui/logout", {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf}})
        .then(() => { location.href = "/ui/login"; });
    }
  });

  if (document.body.dataset.live === "1") {
    const indicator = document.getElementById("live");
    const source = new EventSource("/ui/live");
    source.onopen = () => { indicator.className = "live on"; };
    source.onerror = () => { indicator.className = "live"; };
    source.addEventListener("change", refresh);
    // Close the stream when leaving: a browser allows few connections per host, and an open stream
    // would otherwise hold one until the server notices.
    window.addEventListener("pagehide", () => source.close());
  }

  const logs = document.querySelector("section.logs");
  if (logs) {
    const pick = document.getElementById("log-instance"), search = document.getElementById("log-search");
    const follow = document.getElementById("log-follow"), out = document.getElementById("log-lines");
    async function load() {
      if (!pick.value) return;
      const query = new URLSearchParams({tail: "300", q: search.value});
      const response = await fetch(`/ui/logs/${encodeURIComponent(pick.value)}?${query}`, {credentials: "same-origin"});
      if (!response.ok) return;
      const body = await response.json();
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      out.textContent = body.lines.join("\n");
      if (atEnd) out.scrollTop = out.scrollHeight;
    }
    pick.addEventListener("change", load);
    search.addEventListener("input", load);
    document.getElementById("log-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    setInterval(() => { if (follow.checked) load(); }, 1000);
    load();
  }
  drawCharts();
})();
