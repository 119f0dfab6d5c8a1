// wanderlens web page: plain JS against the same REST API (no build step).
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
      : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function setStatus(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function pct(p) { return `${(100 * p).toFixed(0)}%`; }

function taskBars(name, task) {
  const box = el("div", { class: "task", "data-task": name });
  box.append(el("strong", {}, `${name} (${task.type})`));
  const predicted = new Set([].concat(task.prediction));
  const rows = (task.classes || []).map((c, i) => [c, task.probability[i]]).sort((a, b) => b[1] - a[1]).slice(0, 8);
  for (const [label, p] of rows) {
    const bar = el("div", { class: "bar" }, el("span", { style: `width:${pct(p)}` }));
    box.append(el("div", { class: "bar-row" + (predicted.has(label) ? " predicted" : "") }, el("span", {}, label),
      bar, el("span", {}, pct(p))));
  }
  return box;
}

async function describe(file) {
  if (!file) return;
  setStatus("describe-status", `describing ${file.name}…`);
  $("preview").src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("photo", file, file.name);
  if ($("caption-input").value) form.append("caption", $("caption-input").value);
  if ($("tags-input").value) form.append("tags", $("tags-input").value);
  try {
    const r = await api("/v1/describe", { method: "POST", body: form });
    $("description").textContent = r.description;
    $("imagenet-labels").replaceChildren(...r.imagenet_labels.map((t) => el("li", {}, `${t.label} (${pct(t.prob)})`)));
    $("task-bars").replaceChildren(...Object.entries(r.tasks).map(([n, t]) => taskBars(n, t)));
    $("describe-result").hidden = false;
    setStatus("describe-status", `model version ${r.model_version}`);
  } catch (e) {
    $("describe-result").hidden = true;
    setStatus("describe-status", e.message, true);
  }
}

function photoThumb(id, caption) {
  return el("img", { src: `/v1/photos/${encodeURIComponent(id)}/image`, alt: caption || id, loading: "lazy",
    "data-photo-id": id });
}

function suggestionPhotos(s) {
  const ids = s.photo_ids || s.example_photo_ids || s.photos || (s.photo_id ? [s.photo_id] : []);
  return (ids || []).slice(0, 3).map((p) => photoThumb(typeof p === "string" ? p : p.photo_id));
}

function dateOnly(iso) { return iso ? String(iso).slice(0, 10) : "?"; }

/* Fill list `listId` (and show its title) with one item per row of a per-user API list, with status lines;
   `noun`: [singular, plural]. */
async function loadUserList(userId, { listId, titleId, statusId, path, key, noun, item }) {
  $(listId).replaceChildren();
  $(titleId).hidden = true;
  if (!userId) return;
  setStatus(statusId, `loading ${noun[1]} of ${userId}…`);
  try {
    const rows = (await api(`/v1/users/${encodeURIComponent(userId)}/${path}`))[key];
    $(listId).replaceChildren(...rows.map(item));
    $(titleId).hidden = rows.length === 0;
    setStatus(statusId, `${rows.length} ${noun[rows.length === 1 ? 0 : 1]} of ${userId}`);
  } catch (e) {
    setStatus(statusId, e.message, true);
  }
}

function loadTrips(userId) {
  return loadUserList(userId, {
    listId: "trips", titleId: "trips-title", statusId: "trips-status", path: "trips", key: "trips", noun: ["trip", "trips"],
    item: (t) => el("li", { class: "trip", "data-trip": t.trip_id },
      el("strong", { class: "places" }, (t.places || []).join(" · ") || "place unknown"),
      ` ${dateOnly(t.start)} → ${dateOnly(t.end)}, ${t.days} day${t.days === 1 ? "" : "s"}, ${t.photos} photos`,
      el("div", { class: "muted summary" }, t.summary || "")),
  });
}

function loadSuggestions(userId) {
  return loadUserList(userId, {
    listId: "suggestions", titleId: "suggestions-title", statusId: "suggest-status", path: "suggestions?k=5",
    key: "suggestions", noun: ["suggestion", "suggestions"],
    item: (s) => el("li", { class: "suggestion", "data-destination": s.destination_id || "" },
      el("strong", {}, s.destination_name || s.name || s.destination_id), s.country ? ` (${s.country})` : "",
      el("div", { class: "muted reason" }, [].concat(s.reasons || s.reason || []).join(" · ")),
      el("div", { class: "thumbs" }, ...suggestionPhotos(s))),
  });
}

async function search(q) {
  if (!q) return;
  setStatus("search-status", `searching “${q}”…`);
  try {
    const r = await api(`/v1/search?q=${encodeURIComponent(q)}&k=12`);
    $("search-results").replaceChildren(...r.results.map((h) => el("figure", { class: "hit" },
      photoThumb(h.photo_id, h.caption), el("figcaption", {}, h.caption || h.description || h.photo_id),
      h.place ? el("div", { class: "muted place" }, h.place) : "")));
    setStatus("search-status", `${r.results.length} photos`);
  } catch (e) {
    setStatus("search-status", e.message, true);
  }
}

async function init() {
  try {
    const ready = await api("/readyz");
    $("model-version").textContent = `model version ${ready.model_version}`;
  } catch (e) {
    $("model-version").textContent = `model not ready (${e.message})`;
  }
  try {
    const r = await api("/v1/users");
    for (const u of r.users) $("user-select").append(el("option", { value: u }, u));
  } catch (e) {
    setStatus("suggest-status", e.message, true);
  }
}

$("photo-input").addEventListener("change", (e) => describe(e.target.files[0]));
const zone = $("drop-zone");
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); describe(e.dataTransfer.files[0]); });
$("user-select").addEventListener("change", (e) => { loadTrips(e.target.value); loadSuggestions(e.target.value); });
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("search-input").value.trim()); });
init();
