// ferkit live page: camera frames -> WebSocket /v1/ws -> boxes and labels over the video, FPS,
// a running chart of the emotions; a photo upload (POST /v1/predict) when there is no camera.
// No build step, no dependencies. `window.ferkit` exposes the page state (last answer, frame count).
"use strict";
(() => {
  // The colours of ferkit.viz.EMOTION_COLORS; other class names get viz's crc32-derived colour.
  const COLORS = {
    angry: [230, 45, 45], disgust: [120, 170, 30], fear: [150, 70, 200], happy: [255, 190, 0],
    sad: [40, 110, 230], surprise: [0, 200, 200], neutral: [170, 170, 170], contempt: [170, 100, 50],
  };
  const MAX_SIDE = 640;   // frames are scaled down to this before sending
  const HISTORY = 150;    // points in the chart
  const $ = (id) => document.getElementById(id);
  const video = $("video"), overlay = $("overlay"), chart = $("chart"), photoView = $("photo-view");
  const capture = document.createElement("canvas");
  // With `ferkit serve --token`, open the page as http://host:port/#token=TOKEN: the token stays in
  // the browser (a fragment is never sent) and goes with each request as a bearer token.
  const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
  const AUTH = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};

  const state = {
    classes: [], model: null, mode: "camera", hasCamera: false, ws: null, busy: false,
    frames: 0, errors: 0, last: null, history: [], answered: [], sentAt: 0, fps: 0,
  };
  window.ferkit = state;

  // ------------------------------------------------------------------ colours
  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  function crc32(text) {
    let c = 0xffffffff;
    for (const b of new TextEncoder().encode(text)) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  function rgbOf(name) {
    if (COLORS[name]) return COLORS[name];
    const h = crc32(name);
    return [80 + (h % 160), 80 + ((h >>> 8) % 160), 80 + ((h >>> 16) % 160)];
  }
  const css = (rgb) => `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
  const ink = (rgb) => (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? "#000" : "#fff");

  // ------------------------------------------------------------------ status
  function setStatus(text, error = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", error);
  }

  function updateFps() {
    const now = performance.now();
    state.answered.push(now);
    while (state.answered.length > 2 && now - state.answered[0] > 2000) state.answered.shift();
    const n = state.answered.length;
    if (n >= 2) state.fps = (n - 1) / ((state.answered[n - 1] - state.answered[0]) / 1000);
    $("fps").textContent = `${state.fps.toFixed(1)} FPS`;
  }

  // ------------------------------------------------------------------ drawing
  function drawFaces(result, width, height) {
    overlay.width = width;
    overlay.height = height;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const s = width / result.width;                  // server pixels -> overlay pixels
    const k = Math.max(1, width / 640);
    ctx.lineWidth = Math.max(2, Math.round(2.5 * k));
    ctx.font = `600 ${Math.round(15 * k)}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    for (const f of result.faces) {
      const [x, y, w, h] = f.box.map((v) => v * s);
      const rgb = rgbOf(f.emotion);
      ctx.strokeStyle = css(rgb);
      ctx.strokeRect(x, y, w, h);
      const text = `${f.emotion} ${Math.round(100 * f.confidence)}%`;
      const tw = ctx.measureText(text).width + 8, th = Math.round(20 * k);
      const ty = y - th >= 0 ? y - th : y;             // above the box, inside it at the top edge
      const tx = Math.min(Math.max(0, x - ctx.lineWidth / 2), width - tw);
      ctx.fillStyle = css(rgb);
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = ink(rgb);
      ctx.fillText(text, tx + 4, ty + th - 3);
    }
  }

  function listFaces(result) {
    const ul = $("faces");
    ul.replaceChildren();
    if (!result.faces.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "no face found";
      ul.append(li);
    }
    result.faces.forEach((f, i) => {
      const li = document.createElement("li");
      li.dataset.emotion = f.emotion;
      li.dataset.box = f.box.join(",");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = css(rgbOf(f.emotion));
      const em = document.createElement("span");
      em.className = "emotion";
      em.textContent = f.emotion;
      const rest = document.createElement("span");
      rest.className = "muted";
      rest.textContent = `${Math.round(100 * f.confidence)}% · face ${i + 1} · box ${f.box.join(", ")}`;
      li.append(sw, em, rest);
      ul.append(li);
    });
    document.body.dataset.faces = String(result.faces.length);
  }

  function pushHistory(result) {
    let point = null;  // mean probabilities over the faces of the frame; null: no face (a gap)
    if (result.faces.length) {
      point = state.classes.map((c) => result.faces.reduce((a, f) => a + (f.probabilities[c] || 0), 0) / result.faces.length);
    }
    state.history.push(point);
    if (state.history.length > HISTORY) state.history.shift();
  }

  function drawChart() {
    const ctx = chart.getContext("2d"), W = chart.width, H = chart.height, pad = 6;
    ctx.clearRect(0, 0, W, H);
    ctx.strokeStyle = "#333844";
    ctx.lineWidth = 1;
    ctx.fillStyle = "#6b7280";
    ctx.font = "10px system-ui, sans-serif";
    for (const v of [0, 0.5, 1]) {
      const y = pad + (1 - v) * (H - 2 * pad);
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(W, y); ctx.stroke();
      ctx.fillText(`${v * 100}%`, 2, y - 2 < 10 ? y + 10 : y - 2);
    }
    const n = state.history.length;
    if (!n) return;
    const x = (i) => W - (n - 1 - i) * (W / (HISTORY - 1));
    const y = (p) => pad + (1 - p) * (H - 2 * pad);
    ctx.lineWidth = 2;
    state.classes.forEach((c, ci) => {
      ctx.strokeStyle = css(rgbOf(c));
      ctx.beginPath();
      let pen = false;
      state.history.forEach((pt, i) => {
        if (!pt) { pen = false; return; }
        if (pen) ctx.lineTo(x(i), y(pt[ci])); else ctx.moveTo(x(i), y(pt[ci]));
        pen = true;
      });
      ctx.stroke();
      const lastPoint = state.history[n - 1];
      if (lastPoint) {  // a dot on the newest point, so that a single frame or photo shows too
        ctx.fillStyle = css(rgbOf(c));
        ctx.beginPath(); ctx.arc(x(n - 1) - 3, y(lastPoint[ci]), 3, 0, 2 * Math.PI); ctx.fill();
      }
    });
  }

  function drawLegend() {
    const box = $("legend");
    box.replaceChildren();
    for (const c of state.classes) {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = css(rgbOf(c));
      item.append(sw, ` ${c}`);
      box.append(item);
    }
  }

  function show(result, width, height) {
    state.last = result;
    drawFaces(result, width, height);
    listFaces(result);
    pushHistory(result);
    drawChart();
  }

  // ------------------------------------------------------------------ camera + WebSocket
  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
    const ws = TOKEN ? new WebSocket(url, ["ferkit", `bearer.${TOKEN}`]) : new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => { state.busy = false; setStatus("live"); pump(); };
    ws.onmessage = (ev) => {
      state.busy = false;
      const msg = JSON.parse(ev.data);
      $("latency").textContent = `${Math.round(performance.now() - state.sentAt)} ms`;
      if ("detail" in msg) {
        state.errors++;
        setStatus(msg.detail, true);
      } else if (state.mode === "camera") {
        state.frames++;
        updateFps();
        setStatus(`live · ${msg.faces.length} face${msg.faces.length === 1 ? "" : "s"}`);
        show(msg, video.videoWidth, video.videoHeight);
      }
      requestAnimationFrame(pump);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      setStatus("connection lost, retrying…", true);
      setTimeout(connect, 1000);
    };
  }

  async function pump() {
    const ws = state.ws;
    if (state.mode !== "camera" || state.busy || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (video.readyState < 2 || !video.videoWidth) { setTimeout(pump, 100); return; }
    state.busy = true;
    const s = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    capture.width = Math.round(video.videoWidth * s);
    capture.height = Math.round(video.videoHeight * s);
    capture.getContext("2d").drawImage(video, 0, 0, capture.width, capture.height);
    const blob = await new Promise((resolve) => capture.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob || ws.readyState !== WebSocket.OPEN) { state.busy = false; setTimeout(pump, 200); return; }
    state.sentAt = performance.now();
    ws.send(blob);
  }

  function noCamera(reason) {
    state.hasCamera = false;
    setStatus("no camera");
    $("placeholder").textContent = "No camera: upload a photo →";
    const note = $("camera-note");
    note.textContent = `${reason}. Upload a photo instead.`;
    note.hidden = false;
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      noCamera("This browser gives no camera access here (it needs https or localhost)");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      video.srcObject = stream;
      await video.play();
    } catch (e) {
      noCamera(`No camera (${e.name}${e.message ? ": " + e.message : ""})`);
      return;
    }
    state.hasCamera = true;
    $("placeholder").hidden = true;
    setStatus("connecting…");
    connect();
  }

  // ------------------------------------------------------------------ photo upload
  function showCamera() {
    state.mode = "camera";
    photoView.hidden = true;
    video.hidden = false;
    $("back-to-camera").hidden = true;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    pump();
  }

  async function uploadPhoto(file) {
    state.mode = "photo";
    video.hidden = true;
    $("placeholder").hidden = true;
    photoView.src = URL.createObjectURL(file);
    photoView.hidden = false;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    setStatus("analysing the photo…");
    const form = new FormData();
    form.append("file", file);
    const t = performance.now();
    try {
      const [response] = await Promise.all([fetch("/v1/predict", { method: "POST", body: form, headers: AUTH }), photoView.decode().catch(() => {})]);
      const msg = await response.json();
      $("latency").textContent = `${Math.round(performance.now() - t)} ms`;
      if (!response.ok) throw new Error(msg.detail || `HTTP ${response.status}`);
      show(msg, photoView.naturalWidth || msg.width, photoView.naturalHeight || msg.height);
      setStatus(`photo · ${msg.faces.length} face${msg.faces.length === 1 ? "" : "s"}`);
    } catch (e) {
      state.errors++;
      setStatus(String(e.message || e), true);
    }
    $("back-to-camera").hidden = !state.hasCamera;
  }

  $("photo").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) uploadPhoto(file);
    ev.target.value = "";  // the same file can be chosen again
  });
  $("back-to-camera").addEventListener("click", showCamera);

  // ------------------------------------------------------------------ start
  (async () => {
    drawChart();
    try {
      const m = await (await fetch("/v1/models", { headers: AUTH })).json();
      state.model = m.loaded;
      state.classes = m.loaded.classes;
      $("model").textContent = `${m.loaded.name} · ${m.loaded.arch || "model"} · ${m.loaded.detector} · ${m.loaded.device}`;
      drawLegend();
    } catch (e) {
      setStatus(`cannot reach the server (${e.message})`, true);
      return;
    }
    await startCamera();
  })();
})();
