// muster wall: refreshes every few seconds from the worker's read API; no external assets.
"use strict";
const REFRESH_MS = 5000;
const ROWS = 7;  // rows each list shows; its heading says how many there are in all
const COLOURS = ["#e8eef9", "#4ea1ff", "#36c275", "#f5a623", "#ff5a5f", "#b48cff", "#3fd0d4", "#ff8fc7",
  "#c9d46b", "#8fa3c4"];
const T = {
  zh: { title: "志愿者在岗态势", at: "截至", lang: "English", coverage: "点位覆盖率",
    coverageSub: (c, a) => `达到岗位配置要求 ${c} / ${a} 个点位`,
    understaffed: "缺员点位（最缺在前）", alerts: "未解除告警", series: "各区在岗人数（当日）",
    site: "点位", district: "区", short: "缺", people: "在岗", since: "开始于",
    shownOf: (n, all) => n < all ? `显示 ${n} / 共 ${all} 个` : `共 ${all} 个`,
    target: (p) => `目标 ${p}%`,
    none: "无", total: "全市合计", stale: "数据未更新", live: "每5秒更新",
    units: { hours: "小时", coverage: "" } },
  en: { title: "Volunteers on post", at: "As of", lang: "中文", coverage: "Site coverage",
    coverageSub: (c, a) => `${c} of ${a} sites meet their staffing minimums`,
    understaffed: "Understaffed sites (worst first)", alerts: "Open alerts",
    series: "People on post today, by district", site: "Site", district: "District",
    short: "Short", people: "On post", since: "Since", none: "None", total: "All districts",
    shownOf: (n, all) => n < all ? `${n} of ${all}` : `${all} in all`,
    target: (p) => `target ${p}%`,
    stale: "data not refreshed", live: "refreshes every 5 s", units: { hours: "h", coverage: "" } },
};
const params = new URLSearchParams(location.search);
const pinned = params.get("at");  // ?at=<RFC 3339>: the wall at that cutoff, not now
let lang = params.get("lang") || localStorage.getItem("muster-lang")
  || document.documentElement.lang.slice(0, 2) || "zh";
if (!T[lang]) lang = "zh";

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const fmt = (metric, v) => {
  if (v === null || v === undefined) return "—";
  if (metric === "coverage") return (v * 100).toFixed(1) + "%";
  if (metric === "hours" || metric === "hours_auto") return Math.round(v).toLocaleString("en-US");
  return Number(v).toLocaleString("en-US");
};
const clock = (iso) => iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/([+-]\d\d:\d\d|Z)$/, "") : "";

async function getJSON(url) {
  const answer = await fetch(url, { cache: "no-store" });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

function applyLanguage() {
  const t = T[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = el.dataset[lang]; });
  $("#lang").textContent = t.lang;
  $("#state").textContent = t.live;
}

function renderMetrics(m) {
  document.body.dataset.at = m.at;
  document.querySelectorAll("[data-metric]").forEach((el) => {
    const v = m[el.dataset.metric];
    el.dataset.value = v === null || v === undefined ? "" : String(v);
    el.firstChild.textContent = fmt(el.dataset.metric, v);
  });
  $("#at").textContent = `${T[lang].at} ${clock(m.at)}`;
  $("#cov-fill").style.width = `${(m.coverage * 100).toFixed(1)}%`;
  $("#cov-sub").textContent = T[lang].coverageSub(m.sites_covered, m.sites_active);
  // red below the command centre's target, green at or above it (MUSTER_COVERAGE_TARGET)
  const target = Number(document.body.dataset.coverageTarget || 0.8);
  const level = m.coverage === null || m.coverage === undefined ? "none"
    : m.coverage >= target ? "ok" : "low";
  $("#coverage").classList.remove("ok", "low", "none");
  $("#coverage").classList.add(level);
  $("#cov-target").textContent = T[lang].target(Math.round(target * 100));
}

function renderSites(sites) {
  const t = T[lang];
  // every active site that is not covered (the sites with an open alert), most missing first;
  // a site with no staffing minimum and nobody on post counts as one missing
  const short = sites.filter((s) => s.active && !s.covered)
    .map((s) => ({ ...s, missing: Object.values(s.short).reduce((a, b) => a + b, 0) || 1 }))
    .sort((a, b) => b.missing - a.missing || a.people - b.people || (a.site_id < b.site_id ? -1 : 1));
  const all = short.length;
  short.splice(ROWS);
  $("#understaffed-count").textContent = all ? t.shownOf(short.length, all) : "";
  $("#understaffed").innerHTML = short.length ? `<table><tr><th>${t.site}</th><th>${t.district}</th>`
    + `<th class="num">${t.short}</th><th class="num">${t.people}</th></tr>`
    + short.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.district)}</td>`
      + `<td class="num short" title="${esc(JSON.stringify(s.short))}">${s.missing}</td>`
      + `<td class="num">${s.people}</td></tr>`).join("") + "</table>"
    : `<div class="empty">${t.none}</div>`;
  return new Map(sites.map((s) => [s.site_id, s]));
}

function renderAlerts(alerts, sites) {
  const t = T[lang];
  $("#alerts-count").textContent = alerts.length ? t.shownOf(Math.min(ROWS, alerts.length), alerts.length) : "";
  const rows = alerts.slice(0, ROWS).map((a) => {
    const s = sites.get(a.site_id);
    const missing = Object.values(a.short).reduce((x, y) => x + y, 0);
    return `<tr><td>${esc(s ? s.name : a.site_id)}</td><td>${esc(clock(a.opened_at).slice(5, 16))}</td>`
      + `<td class="num short">${missing}</td><td class="num">${a.people}</td></tr>`;
  });
  $("#alerts").innerHTML = rows.length ? `<table><tr><th>${t.site}</th><th>${t.since}</th>`
    + `<th class="num">${t.short}</th><th class="num">${t.people}</th></tr>${rows.join("")}</table>`
    : `<div class="empty">${t.none}</div>`;
}

function renderSeries(series) {
  const t = T[lang];
  // drawn at the panel's own aspect ratio, as high as the screen has room for below the
  // panels above (at least 140 px), so text is never stretched
  const box = $("#series");
  const room = Math.max(140, window.innerHeight - box.getBoundingClientRect().top - 56);
  const W = 900, left = 56, right = 14, bottom = 30, top = 10;
  const H = Math.max(150, Math.round(W * room / Math.max(1, box.clientWidth)));
  const times = series.times.map((s) => Date.parse(s));
  let lines = series.districts.map((d) => ({ name: d, values: series.people[d] }));
  lines.sort((a, b) => b.values[b.values.length - 1] - a.values[a.values.length - 1]);
  // the city's total first (white), then the busiest districts at the cutoff
  const total = times.map((_, i) => lines.reduce((n, l) => n + l.values[i], 0));
  lines = [{ name: t.total, values: total }, ...lines.slice(0, 7)];
  const day0 = Date.parse(series.day_start), day1 = day0 + 24 * 3600e3;
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  const x = (ms) => left + (W - left - right) * (ms - day0) / (day1 - day0);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  let svg = "";
  for (let h = 0; h <= 24; h += 3) {
    svg += `<line x1="${x(day0 + h * 3600e3)}" x2="${x(day0 + h * 3600e3)}" y1="${top}" y2="${H - bottom}" stroke="#22314d"/>`
      + `<text x="${x(day0 + h * 3600e3)}" y="${H - 6}" text-anchor="${h === 24 ? "end" : h === 0 ? "start" : "middle"}">${String(h).padStart(2, "0")}:00</text>`;
  }
  for (const f of [0, 0.5, 1]) {
    svg += `<text x="${left - 6}" y="${y(max * f) + 4}" text-anchor="end">${Math.round(max * f)}</text>`;
  }
  lines.forEach((l, i) => {
    const pts = l.values.map((v, k) => `${x(times[k]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg += `<polyline fill="none" stroke="${COLOURS[i]}" stroke-width="${i ? 2.5 : 4}" points="${pts}"/>`;
  });
  $("#series").innerHTML = `<svg viewBox="0 0 ${W} ${H}" width="100%">${svg}</svg>`
    + `<div class="legend">${lines.map((l, i) => `<span style="--c:${COLOURS[i]}">${esc(l.name)} ${l.values[l.values.length - 1]}</span>`).join("")}</div>`;
}

async function refresh() {
  try {
    const m = await getJSON(pinned ? `/api/metrics?at=${encodeURIComponent(pinned)}` : "/api/metrics");
    renderMetrics(m);
    const at = encodeURIComponent(m.at);
    const [sites, alerts, series] = await Promise.all([
      getJSON(`/api/sites?at=${at}`), getJSON(pinned ? `/api/alerts?at=${at}` : "/api/alerts"),
      getJSON(`/api/wall/series?at=${at}`)]);
    const byId = renderSites(sites.sites);
    renderAlerts(alerts.alerts, byId);
    renderSeries(series);
    $("#state").classList.remove("stale");
    $("#state").textContent = T[lang].live;
    document.body.dataset.at = m.at;  // the cutoff every figure on the page is for
  } catch (err) {
    $("#state").classList.add("stale");
    $("#state").textContent = `${T[lang].stale}: ${err.message}`;
  }
}

$("#lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("muster-lang", lang);
  applyLanguage();
  refresh();
});
applyLanguage();
refresh();
setInterval(refresh, REFRESH_MS);
