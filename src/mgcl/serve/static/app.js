// The mgcl serve page: classes with examples (upload or record), fit with progress, classify
// a clip (top-k bars + the explanation picture). Plain JS, no build step, no CDN.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { classes: [], query: null, info: null, recording: null };
const MAX_RECORD_S = 10;

// ------------------------------------------------------------------ messages and the API
function say(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

function headers() {
  const token = $("#token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

const STATUS_WORDS = {
  400: "Bad request", 401: "Token needed or wrong (enter it at the top right)", 404: "Not found",
  409: "Conflict", 413: "Too large", 422: "Unusable audio", 500: "Server error", 503: "Server busy",
};

async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  } catch (err) {
    throw new Error("Cannot reach the server (" + err.message + ")");
  }
  if (res.ok) return res;
  let detail = res.statusText;
  try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
  let text = (STATUS_WORDS[res.status] || "Error " + res.status) + ": " + detail;
  const retry = res.headers.get("Retry-After");
  if (res.status === 503 && retry) text += " (try again in " + retry + " s)";
  const err = new Error(text);
  err.status = res.status;
  throw err;
}

// ------------------------------------------------------------------ recording -> 16-bit WAV
function encodeWav(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); str(8, "WAVE");
  str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

async function toWav(blob) {
  const ctx = new (window.AudioContext || window.webkitAudioContext)();
  try {
    const audio = await ctx.decodeAudioData(await blob.arrayBuffer());
    const mono = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      const ch = audio.getChannelData(c);
      for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / audio.numberOfChannels;
    }
    return encodeWav(mono, audio.sampleRate);
  } finally {
    ctx.close();
  }
}

// Toggle recording on `button`; `done(wavBlob)` gets the clip when it stops.
async function toggleRecord(button, done) {
  if (state.recording) { state.recording.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    say("Recording needs a browser with a microphone API (and a page served from localhost or https).");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    say("No microphone: " + err.message);
    return;
  }
  const rec = new MediaRecorder(stream);
  const chunks = [];
  const label = button.textContent;
  const t0 = Date.now();
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  const tick = setInterval(() => {
    const s = (Date.now() - t0) / 1000;
    button.textContent = "■ Stop (" + s.toFixed(1) + " s)";
    if (s >= MAX_RECORD_S) rec.stop();
  }, 100);
  rec.onstop = async () => {
    clearInterval(tick);
    stream.getTracks().forEach((t) => t.stop());
    state.recording = null;
    button.textContent = label;
    button.setAttribute("aria-pressed", "false");
    try {
      done(await toWav(new Blob(chunks, { type: rec.mimeType })));
    } catch (err) {
      say("Could not decode the recording: " + err.message);
    }
  };
  state.recording = rec;
  button.setAttribute("aria-pressed", "true");
  button.textContent = "■ Stop";
  rec.start();
}

// ------------------------------------------------------------------ classes and examples
let recordings = 0;

function renderClasses() {
  const box = $("#classes");
  box.replaceChildren();
  for (const cls of state.classes) {
    const fs = document.createElement("fieldset");
    fs.className = "class";
    fs.dataset.label = cls.label;
    const legend = document.createElement("legend");
    legend.textContent = cls.label + " (" + cls.examples.length + " example" + (cls.examples.length === 1 ? "" : "s") + ")";
    fs.append(legend);
    const row = document.createElement("div");
    row.className = "row";
    const upload = document.createElement("input");
    upload.type = "file";
    upload.multiple = true;
    upload.accept = "audio/*,.wav,.flac,.ogg,.mp3";
    upload.setAttribute("aria-label", "add example files to " + cls.label);
    upload.addEventListener("change", () => {
      for (const f of upload.files) cls.examples.push({ name: f.name, blob: f });
      renderClasses();
    });
    const rec = document.createElement("button");
    rec.type = "button";
    rec.className = "record";
    rec.textContent = "● Record";
    rec.setAttribute("aria-pressed", "false");
    rec.setAttribute("aria-label", "record an example of " + cls.label);
    rec.addEventListener("click", () => toggleRecord(rec, (wav) => {
      recordings += 1;
      cls.examples.push({ name: "recording-" + recordings + ".wav", blob: wav });
      renderClasses();
    }));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = "Remove class";
    remove.addEventListener("click", () => {
      state.classes = state.classes.filter((c) => c !== cls);
      renderClasses();
    });
    row.append(upload, rec, remove);
    fs.append(row);
    const list = document.createElement("ul");
    list.className = "examples";
    cls.examples.forEach((ex, i) => {
      const li = document.createElement("li");
      li.textContent = ex.name;
      const del = document.createElement("button");
      del.type = "button";
      del.className = "secondary";
      del.textContent = "remove";
      del.setAttribute("aria-label", "remove " + ex.name);
      del.addEventListener("click", () => { cls.examples.splice(i, 1); renderClasses(); });
      li.append(del);
      list.append(li);
    });
    fs.append(list);
    box.append(fs);
  }
}

function addClass(event) {
  event.preventDefault();
  const input = $("#class-name");
  const label = input.value.trim();
  if (!label) return;
  if (state.classes.some((c) => c.label === label)) { say("There is already a class '" + label + "'."); return; }
  state.classes.push({ label, examples: [] });
  input.value = "";
  say("");
  renderClasses();
  input.focus();
}

// ------------------------------------------------------------------ fit
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fit(event) {
  event.preventDefault();
  const name = $("#model-name").value.trim();
  const used = state.classes.filter((c) => c.examples.length);
  if (used.length < 2) { say("Add examples to at least two classes first."); return; }
  const form = new FormData();
  form.append("name", name);
  form.append("method", $("#method").value);
  for (const cls of used) {
    for (const ex of cls.examples) {
      form.append("files", ex.blob, ex.name);
      form.append("labels", cls.label);
    }
  }
  const button = $("#fit");
  button.disabled = true;
  $("#fit-progress").hidden = false;
  const bar = $("#fit-bar");
  const stage = $("#fit-stage");
  bar.removeAttribute("value");
  stage.textContent = "uploading…";
  say("");
  try {
    let job = await (await api("/models", { method: "POST", body: form })).json();
    while (job.status === "queued" || job.status === "running") {
      stage.textContent = job.stage + (job.total ? " (" + job.done + "/" + job.total + ")" : "");
      if (job.total) bar.value = job.done / job.total; else bar.removeAttribute("value");
      await sleep(400);
      job = await (await api("/jobs/" + job.id)).json();
    }
    if (job.status === "failed") {
      throw new Error((STATUS_WORDS[job.error_status] || "Fit failed") + ": " + job.error);
    }
    bar.value = 1;
    stage.textContent = "done: model " + name + " saved";
    say("Model '" + name + "' fitted with " + job.result.method + " on " + job.result.classes.length + " classes.", "ok");
    await loadModels(name);
  } catch (err) {
    stage.textContent = "failed";
    say(err.message);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ models
async function loadModels(select) {
  let models = [];
  try {
    models = (await (await api("/models")).json()).models;
  } catch (err) {
    say(err.message);
    return;
  }
  const list = $("#models");
  const pick = $("#use-model");
  const before = select || pick.value;
  list.replaceChildren();
  pick.replaceChildren();
  if (!models.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No models yet: build one on the left.";
    list.append(li);
  }
  for (const m of models) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = m.name;
    const what = document.createElement("span");
    what.className = "muted";
    what.textContent = m.error ? m.error : m.method + " · " + m.classes.join(", ");
    const use = document.createElement("button");
    use.type = "button";
    use.className = "secondary";
    use.textContent = "Use";
    use.setAttribute("aria-label", "use model " + m.name);
    use.addEventListener("click", () => { pick.value = m.name; $("#query-file").focus(); });
    const del = document.createElement("button");
    del.type = "button";
    del.className = "secondary";
    del.textContent = "Delete";
    del.setAttribute("aria-label", "delete model " + m.name);
    del.addEventListener("click", async () => {
      if (!window.confirm("Delete model '" + m.name + "'?")) return;
      try { await api("/models/" + encodeURIComponent(m.name), { method: "DELETE" }); say("Deleted " + m.name + ".", "ok"); }
      catch (err) { say(err.message); }
      loadModels();
    });
    li.append(name, what, use, del);
    list.append(li);
    if (!m.error) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = m.name;
      pick.append(opt);
    }
  }
  if (before && models.some((m) => m.name === before)) pick.value = before;
}

// ------------------------------------------------------------------ classify
function setQuery(blob, name) {
  state.query = { blob, name };
  $("#query-name").textContent = "clip: " + name;
}

async function classify() {
  const model = $("#use-model").value;
  if (!model) { say("Fit or choose a model first."); return; }
  if (!state.query) { say("Choose or record a clip first."); return; }
  const button = $("#classify");
  button.disabled = true;
  say("");
  const form = new FormData();
  form.append("files", state.query.blob, state.query.name);
  const path = "/models/" + encodeURIComponent(model);
  try {
    const out = await (await api(path + "/predict?top_k=5", { method: "POST", body: form })).json();
    const r = out.results[0];
    if (r.error) throw new Error("Unusable audio: " + r.error);
    $("#result").hidden = false;
    $("#result-label").textContent = r.label;
    $("#result-score").textContent = (100 * r.score).toFixed(1) + " %";
    const bars = $("#bars");
    bars.replaceChildren();
    for (const t of r.top_k) {
      const li = document.createElement("li");
      const lab = document.createElement("span");
      lab.className = "lab";
      lab.textContent = t.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", t.label + " " + (100 * t.score).toFixed(1) + " percent");
      const fill = document.createElement("span");
      fill.style.width = Math.max(0.5, 100 * t.score).toFixed(1) + "%";
      bar.append(fill);
      const p = document.createElement("span");
      p.className = "p";
      p.textContent = (100 * t.score).toFixed(1) + "%";
      li.append(lab, bar, p);
      bars.append(li);
    }
    const form2 = new FormData();
    form2.append("file", state.query.blob, state.query.name);
    const png = await (await api(path + "/explain", { method: "POST", body: form2 })).blob();
    const img = $("#explain-img");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(png);
    $("#explain-figure").hidden = false;
  } catch (err) {
    say(err.message);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ start
function init() {
  $("#token").value = sessionStorage.getItem("mgcl-token") || "";
  $("#token").addEventListener("change", () => {
    sessionStorage.setItem("mgcl-token", $("#token").value.trim());
    connect();
  });
  $("#class-form").onsubmit = addClass;
  $("#fit-form").onsubmit = fit;
  $("#classify").onclick = classify;
  $("#query-file").onchange = (e) => { const f = e.target.files[0]; if (f) setQuery(f, f.name); };
  $("#query-record").onclick = () => toggleRecord($("#query-record"), (wav) => {
    recordings += 1;
    setQuery(wav, "recording-" + recordings + ".wav");
  });
  connect();
}

async function connect() {
  try {
    const info = await (await api("/info")).json();
    state.info = info;
    $("#server-info").textContent = "backbone " + info.backbone.name + " · uploads up to " + info.limits.max_upload_mb +
      " MB, clips up to " + info.limits.max_seconds + " s";
    const method = $("#method");
    method.replaceChildren();
    for (const m of info.methods) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = m;
      method.append(opt);
    }
    method.value = info.default_method;
    say("");
  } catch (err) {
    $("#server-info").textContent = "not connected";
    say(err.message);
    return;
  }
  await loadModels();
}

document.addEventListener("DOMContentLoaded", init);
