// The Sd35 GUI: one page, plain JavaScript, talking only to the server's public API.
"use strict";

const $ = id => document.getElementById(id);
const form = $("generate-form");
// image: the uploaded file as a data URL and its size; mask: the painted mask at the image's size, white = repaint.
const state = { job: null, events: null, info: null, image: null, maskPainted: false };

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
    $("n").max = info.limits.max_images;
  } catch (e) {
    showError(`could not reach the server: ${e}`);
  }
}

// A server started with --api-key: the key is asked for once and exchanged for an HttpOnly session cookie, which
// every later call (EventSource included, which cannot send headers) carries for 12 hours or until the server restarts.
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
  if (number("n") !== 1) body.n = number("n");
  if (state.image) {
    body.image = state.image.dataUrl;
    body.strength = Number($("strength").value);
    if (state.maskPainted) body.mask = $("mask-canvas").toDataURL("image/png");
  }
  return body;
}

// ---- image upload and mask painting -------------------------------------------------------------------------
// The mask canvas has the image's own size (CSS scales it for display); it starts black (keep) and the brush paints
// white (repaint) squares at whole pixels, so the PNG sent holds only black and white and its region is exact.
$("image").addEventListener("change", () => {
  const file = $("image").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const img = new Image();
    img.onload = () => {
      state.image = { dataUrl: reader.result, width: img.naturalWidth, height: img.naturalHeight };
      for (const id of ["image-canvas", "mask-canvas"]) { $(id).width = img.naturalWidth; $(id).height = img.naturalHeight; }
      $("image-canvas").getContext("2d").drawImage(img, 0, 0);
      clearMask();
      $("width").value = img.naturalWidth; $("height").value = img.naturalHeight;
      $("width").readOnly = $("height").readOnly = true;
      $("image-editor").hidden = false;
    };
    img.src = reader.result;
  };
  reader.readAsDataURL(file);
});

function clearMask() {
  const context = $("mask-canvas").getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, $("mask-canvas").width, $("mask-canvas").height);
  state.maskPainted = false;
}

function paintAt(event) {
  const canvas = $("mask-canvas"), box = canvas.getBoundingClientRect();
  const x = Math.floor((event.clientX - box.left) * canvas.width / box.width);
  const y = Math.floor((event.clientY - box.top) * canvas.height / box.height);
  const size = Number($("brush").value), half = Math.floor(size / 2);
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(x - half, y - half, size, size);
  state.maskPainted = true;
}

$("mask-canvas").addEventListener("mousedown", event => { paintAt(event); state.painting = true; });
$("mask-canvas").addEventListener("mousemove", event => { if (state.painting && event.buttons & 1) paintAt(event); });
window.addEventListener("mouseup", () => { state.painting = false; });
$("clear-mask").addEventListener("click", clearMask);
$("remove-image").addEventListener("click", () => {
  state.image = null;
  $("image").value = "";
  $("image-editor").hidden = true;
  $("width").readOnly = $("height").readOnly = false;
});
$("strength").addEventListener("input", () => { $("strength-value").textContent = $("strength").value; });
$("brush").addEventListener("input", () => { $("brush-value").textContent = $("brush").value; });

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
  // Errors are {"error": "…"} or, for the key and connection limits, OpenAI's {"error": {"message", …}}.
  const message = json.error?.message ?? json.error;
  if (answer.status === 401) {
    busy(false);
    return askForKey();
  }
  if (answer.status === 429) {
    busy(false);
    setProgress(0, 1, "queue full");
    return showError(`${message ?? "the queue is full"} (retry in ${answer.headers.get("Retry-After") ?? "a few"} s)`);
  }
  if (!answer.ok) {
    busy(false);
    setProgress(0, 1, "rejected");
    return showError(message ?? `HTTP ${answer.status}`, json.field);
  }
  follow(json.id);
});

function follow(id) {
  state.job = id;
  const events = new EventSource(`/v1/images/${id}/events`);
  state.events = events;
  const update = e => {
    const job = JSON.parse(e.data);
    const label = job.status === "queued" ? `queued (position ${job.queue_position + 1})` : `${job.status}${job.stage ? ` · ${job.stage.replaceAll("_", " ")}` : ""} · step ${job.step}/${job.steps}`;
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
  // Every image of the job: the first is #result, the others follow it.
  $("result").src = job.images[0];
  $("result").dataset.jobId = job.id;
  $("results").replaceChildren($("result"), ...job.images.slice(1).map(src => {
    const img = document.createElement("img");
    img.src = src; img.alt = "generated image"; img.className = "more-result";
    return img;
  }));
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
  if (p.mode !== "text_to_image") row(parameters, "mode", `${p.mode.replaceAll("_", " ")}, strength ${p.strength}`);
  if (p.mask) row(parameters, "mask", `${p.mask.area} px in ${p.mask.width}×${p.mask.height} at (${p.mask.x}, ${p.mask.y})`);
  if (p.n > 1) row(parameters, "images", p.n);
  if (p.no_t5) row(parameters, "T5", "off");
  timings.replaceChildren();
  const t = job.timings, s = x => `${x.toFixed(3)} s`;
  row(timings, "loading models", s(t.load_seconds));
  row(timings, "text encoding", s(t.encoding_seconds));
  if (t.image_encoding_seconds > 0) row(timings, "image encoding", s(t.image_encoding_seconds));
  row(timings, `denoising (${t.step_seconds.length} steps)`, s(t.denoising_seconds));
  row(timings, "VAE decoding", s(t.decoding_seconds));
  row(timings, "total", s(t.total_seconds));
}

function addToGallery(job) {
  const figure = document.createElement("figure");
  const images = job.images.map(src => {
    const img = document.createElement("img");
    img.src = src;
    img.alt = job.parameters.prompt;
    return img;
  });
  const caption = document.createElement("figcaption");
  caption.textContent = `${job.parameters.prompt} · seed ${job.parameters.seed}${job.images.length > 1 ? ` · ${job.images.length} images` : ""}`;
  figure.append(...images, caption);
  figure.addEventListener("click", () => show(job));
  $("gallery").prepend(figure);
}

loadInfo();
