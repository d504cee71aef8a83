// The Sd35 GUI: one page, plain JavaScript, talking only to the server's public API.
"use strict";

const $ = id => document.getElementById(id);
const form = $("generate-form");
const state = { job: null, events: null, info: null };

async function loadInfo() {
  try {
    const answer = await fetch("/v1/info");
    if (answer.status === 401) return askForKey();
    const info = await answer.json();
    state.info = info;
    $("model-info").textContent = `${info.model} · ${info.config} · ${info.device} · ${info.d_type}`;
    for (const id of ["width", "height"]) { $(id).value = info.default_size; $(id).step = info.size_multiple_of; }
    $("steps").value = info.default_steps;
    $("slg-layers").textContent = `(layers ${info.default_skip_layers.join(", ")})`;
  } catch (e) {
    showError(`could not reach the server: ${e}`);
  }
}

// A server started with --api-key: the key is asked for once and exchanged for an HttpOnly session cookie, which
// every later call (EventSource included, which cannot send headers) carries until the browser closes.
function askForKey() {
  $("key-form").hidden = false;
  $("generate").disabled = true;
  $("api-key").focus();
}

$("key-form").addEventListener("submit", async event => {
  event.preventDefault();
  const answer = await fetch("/v1/session", { method: "POST", headers: { Authorization: `Bearer ${$("api-key").value}` } });
  $("api-key").value = "";
  if (!answer.ok) {
    $("key-error").textContent = answer.status === 401 ? "this key is not valid for this server" : `HTTP ${answer.status}`;
    $("key-error").hidden = false;
    return;
  }
  $("key-form").hidden = true;
  $("key-error").hidden = true;
  $("generate").disabled = false;
  loadInfo();
});

function requestBody() {
  const number = id => $(id).value === "" ? undefined : Number($(id).value);
  const body = {
    prompt: $("prompt").value,
    negative_prompt: $("negative_prompt").value,
    steps: number("steps"), guidance: number("guidance"), seed: number("seed"),
    width: number("width"), height: number("height"),
  };
  if ($("skip_layer_guidance").checked) body.skip_layer_guidance = { layers: state.info?.default_skip_layers };
  return body;
}

function showError(message, field) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  document.querySelectorAll(".invalid").forEach(e => e.classList.remove("invalid"));
  if (field && $(field)) { $(field).classList.add("invalid"); $(field).focus(); }
}

function clearError() {
  $("error").hidden = true;
  document.querySelectorAll(".invalid").forEach(e => e.classList.remove("invalid"));
}

function setProgress(step, steps, label) {
  const bar = $("progress");
  // Attributes (not only properties), so the value can be watched like any other DOM change.
  bar.setAttribute("max", String(Math.max(steps, 1)));
  bar.setAttribute("value", String(step));
  $("status").textContent = label;
}

function busy(running) {
  $("generate").disabled = running;
  $("cancel").disabled = !running;
}

form.addEventListener("submit", async event => {
  event.preventDefault();
  clearError();
  const body = requestBody();
  busy(true);
  setProgress(0, body.steps ?? 1, "submitting…");
  let answer;
  try {
    answer = await fetch("/v1/images", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    busy(false);
    return showError(`could not reach the server: ${e}`);
  }
  const json = await answer.json().catch(() => ({}));
  if (answer.status === 429) {
    busy(false);
    setProgress(0, 1, "queue full");
    return showError(`${json.error ?? "the queue is full"} (retry in ${answer.headers.get("Retry-After") ?? "a few"} s)`);
  }
  if (!answer.ok) {
    busy(false);
    setProgress(0, 1, "rejected");
    return showError(json.error ?? `HTTP ${answer.status}`, json.field);
  }
  follow(json.id);
});

function follow(id) {
  state.job = id;
  const events = new EventSource(`/v1/images/${id}/events`);
  state.events = events;
  const update = e => {
    const job = JSON.parse(e.data);
    const label = job.status === "queued" ? `queued (position ${job.queue_position + 1})` : `${job.status} · step ${job.step}/${job.steps}`;
    setProgress(job.step, job.steps, label);
    return job;
  };
  events.addEventListener("progress", update);
  events.addEventListener("succeeded", e => { finish(events); const job = update(e); show(job); addToGallery(job); });
  events.addEventListener("failed", e => { finish(events); const job = update(e); showError(`generation failed: ${job.error}`); });
  events.addEventListener("cancelled", e => { finish(events); const job = update(e); $("status").textContent = `cancelled (${job.error ?? ""})`; });
  events.onerror = () => {
    if (state.events !== events) return;
    finish(events);
    showError("lost the connection to the server's progress stream");
  };
}

function finish(events) {
  events.close();
  if (state.events === events) state.events = null;
  busy(false);
}

$("cancel").addEventListener("click", async () => {
  if (!state.job) return;
  const answer = await fetch(`/v1/images/${state.job}`, { method: "DELETE" });
  if (!answer.ok && answer.status !== 409) showError(`cancel failed: HTTP ${answer.status}`);
});

function row(table, name, value) {
  const tr = table.insertRow();
  tr.insertCell().textContent = name;
  tr.insertCell().textContent = value;
}

function show(job) {
  $("result").src = `/v1/images/${job.id}/png`;
  $("result").dataset.jobId = job.id;
  $("result-figure").hidden = false;
  const p = job.parameters, parameters = $("parameters"), timings = $("timings");
  parameters.replaceChildren();
  row(parameters, "prompt", p.prompt);
  if (p.negative_prompt) row(parameters, "negative prompt", p.negative_prompt);
  row(parameters, "size", `${p.width}×${p.height}`);
  row(parameters, "steps", p.steps);
  row(parameters, "guidance", p.guidance);
  row(parameters, "seed", p.seed);
  if (p.skip_layer_guidance_layers) row(parameters, "skip layers", p.skip_layer_guidance_layers.join(", "));
  timings.replaceChildren();
  const t = job.timings, s = x => `${x.toFixed(3)} s`;
  row(timings, "loading models", s(t.load_seconds));
  row(timings, "text encoding", s(t.encoding_seconds));
  row(timings, `denoising (${t.step_seconds.length} steps)`, s(t.denoising_seconds));
  row(timings, "VAE decoding", s(t.decoding_seconds));
  row(timings, "total", s(t.total_seconds));
}

function addToGallery(job) {
  const figure = document.createElement("figure");
  const img = document.createElement("img");
  img.src = `/v1/images/${job.id}/png`;
  img.alt = job.parameters.prompt;
  const caption = document.createElement("figcaption");
  caption.textContent = `${job.parameters.prompt} · seed ${job.parameters.seed}`;
  figure.append(img, caption);
  figure.addEventListener("click", () => show(job));
  $("gallery").prepend(figure);
}

loadInfo();
