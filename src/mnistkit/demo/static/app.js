// The draw-a-digit page: draw on a canvas, post its pixels to /predict, show the answer.
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
let drawing = false;
let inked = false;
let pending = 0;

function clearPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  pen.strokeStyle = "#000";
  // A digit drawn across most of the pad has strokes as thick, relative to its
  // height, as MNIST's: about 2.5 pixels in the 20-pixel box.
  pen.lineWidth = pad.width / 12;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  inked = false;
  seen.clearRect(0, 0, 28, 28);
  document.getElementById("digit").textContent = "\u2013";
  document.getElementById("confidence").textContent = "\u00a0";
  document.getElementById("uncertainty").textContent = "\u00a0";
  showBars(new Array(10).fill(0), null);
  document.body.dataset.state = "ready";
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  inked = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = at(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x, y);
  pen.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = at(event);
  pen.lineTo(x, y);
  pen.stroke();
});
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => {
    if (!drawing) return;
    drawing = false;
    predict();
  });
}
document.getElementById("clear").addEventListener("click", clearPad);

function grayPixels() {
  const rgba = pen.getImageData(0, 0, pad.width, pad.height).data;
  const gray = new Uint8Array(pad.width * pad.height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
  let text = "";
  for (let i = 0; i < gray.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, gray.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

async function predict() {
  if (!inked) return;
  const asked = ++pending;
  document.body.dataset.state = "waiting";
  const response = await fetch("/predict", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ width: pad.width, height: pad.height, pixels: grayPixels() }),
  });
  const answer = await response.json();
  if (asked !== pending) return; // a later stroke's answer is on its way
  if (!response.ok) {
    document.getElementById("digit").textContent = "?";
    document.getElementById("confidence").textContent = answer.error;
    document.body.dataset.state = "error";
    return;
  }
  show(answer);
  document.body.dataset.state = "done";
}

function show(answer) {
  const p = answer.probabilities;
  document.getElementById("digit").textContent = String(answer.digit);
  document.getElementById("confidence").textContent =
    `${(100 * p[answer.digit]).toFixed(1)}% sure`;
  const pixels = seen.createImageData(28, 28);
  answer.image.forEach((value, i) => {
    pixels.data.set([value, value, value, 255], 4 * i);
  });
  seen.putImageData(pixels, 0, 0);
  showBars(p, answer.uncertainty);
  const u = answer.uncertainty;
  const line = document.getElementById("uncertainty");
  if (u) {
    const agree = Math.round(u.agreement * u.samples);
    line.innerHTML = "";
    const key = document.createElement("span");
    key.className = "key";
    line.append(key, ` Monte-Carlo dropout, ${u.samples} passes: ${agree} of ${u.samples} ` +
      `say ${answer.digit}. In orange: the passes' mean probability \u00b1 one standard ` +
      `deviation. Entropy ${u.entropy_bits.toFixed(2)} bits.`);
  } else {
    line.textContent = "This model has no dropout: no Monte-Carlo uncertainty.";
  }
}

function showBars(p, u) {
  const top = p.indexOf(Math.max(...p));
  bars.replaceChildren(...p.map((value, digit) => {
    const row = document.createElement("li");
    row.className = value > 0 && digit === top ? "top" : "";
    const label = document.createElement("span");
    label.textContent = digit;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${100 * value}%`;
    track.append(bar);
    if (u) {
      const low = Math.max(0, u.mean[digit] - u.std[digit]);
      const high = Math.min(1, u.mean[digit] + u.std[digit]);
      const spread = document.createElement("span");
      spread.className = "spread";
      spread.style.left = `${100 * low}%`;
      spread.style.width = `${Math.max(0.5, 100 * (high - low))}%`;
      track.append(spread);
    }
    const number = document.createElement("span");
    number.className = "value";
    number.textContent = `${(100 * value).toFixed(1)}%`;
    row.append(label, track, number);
    return row;
  }));
}

async function describeModel() {
  const info = await (await fetch("/info")).json();
  const dropout = info.dropout && info.samples > 0
    ? `, with dropout (${info.samples} Monte-Carlo passes per drawing)` : "";
  document.getElementById("model").textContent =
    `Model ${info.model}: ${info.parameters.toLocaleString("en")} parameters${dropout}.`;
}

clearPad();
describeModel();
