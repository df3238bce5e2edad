// The live view: microphone or file audio to /v1/realtime (OpenAI's Realtime protocol, transcription mode), turns
// shown as they are heard and replaced by their final text.
"use strict";

const RATE = 24000; // what the page sends; the server also takes 16 kHz
const CHUNK_S = 0.1;
const FINISH_TIMEOUT_MS = 30000; // a long last turn is decoded after Stop; CPU workers take a while
const FILE_TAIL_S = 1.0; // silence after a file, so its last turn ends the way a speaker's does

const $ = (id) => document.getElementById(id);
const ui = {
  key: $("api-key"),
  startMic: $("start-mic"),
  file: $("file"),
  fileButton: document.querySelector("label[for=file]"),
  stop: $("stop"),
  level: $("level"),
  session: $("session"),
  sessionId: $("session-id"),
  turns: $("turns"),
  viewer: $("viewer"),
  viewerLink: $("viewer-link"),
};

// Relative to the page, so the service still works behind a proxy that serves it under a path prefix.
function realtimeUrl() {
  const url = new URL("../v1/realtime?intent=transcription", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// Mono float samples at any rate to RATE, across chunk boundaries. Downsampling averages each output sample's
// span of input (a box filter, enough against aliasing for speech); upsampling interpolates linearly.
class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate;
    this.rest = new Float32Array(0);
    this.pos = 0;
  }

  push(input) {
    const buf = new Float32Array(this.rest.length + input.length);
    buf.set(this.rest);
    buf.set(input, this.rest.length);
    const out = new Float32Array(Math.ceil((buf.length - this.pos) / this.step) + 1);
    let n = 0;
    let pos = this.pos;
    if (this.step === 1) {
      out.set(buf);
      n = buf.length;
      pos = buf.length;
    } else if (this.step > 1) {
      while (pos + this.step <= buf.length) {
        const from = Math.floor(pos);
        const to = Math.max(from + 1, Math.floor(pos + this.step));
        let sum = 0;
        for (let i = from; i < to; i++) sum += buf[i];
        out[n++] = sum / (to - from);
        pos += this.step;
      }
    } else {
      while (pos + 1 < buf.length) {
        const i = Math.floor(pos);
        out[n++] = buf[i] + (buf[i + 1] - buf[i]) * (pos - i);
        pos += this.step;
      }
    }
    const used = Math.floor(pos);
    this.rest = buf.slice(used);
    this.pos = pos - used;
    return out.subarray(0, n);
  }
}

// Little-endian 16-bit PCM, base64: what `input_audio_buffer.append` carries.
function pcm16Base64(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function peak(samples) {
  let max = 0;
  for (let i = 0; i < samples.length; i++) max = Math.max(max, Math.abs(samples[i]));
  return max;
}

// Collects the microphone's input into ~100 ms blocks on the audio thread and hands them to the page.
const CAPTURE_WORKLET = `
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.size;
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }
  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (const channel of channels) sum += channel[i];
        this.block[this.filled++] = sum / channels.length;
        if (this.filled === this.size) {
          this.port.postMessage(this.block, [this.block.buffer]);
          this.block = new Float32Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("scribeflow-capture", Capture);
`;

class MicSource {
  preparing() {
    return "Waiting for the microphone…";
  }

  describe() {
    return "Listening to the microphone. Speak, then press Stop.";
  }

  async start(onChunk) {
    if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error("the browser allows the microphone only on pages served over HTTPS (or from localhost)");
    }
    // The browser's noise suppression and gain control clip the soft start of speech after a pause, which the
    // server's turn detection then misses; the recogniser does better with the plain signal.
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    if (this.stopped) {
      // Stop was pressed while the browser asked for permission: the microphone must not stay on.
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    this.stream = stream;
    this.context = new AudioContext();
    const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "text/javascript" }));
    try {
      await this.context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const resampler = new Resampler(this.context.sampleRate, RATE);
    const source = this.context.createMediaStreamSource(this.stream);
    const capture = new AudioWorkletNode(this.context, "scribeflow-capture", {
      processorOptions: { size: Math.round(this.context.sampleRate * CHUNK_S) },
    });
    capture.port.onmessage = (event) => onChunk(resampler.push(event.data));
    // A node that reaches the destination is rendered in every browser; the zero gain keeps the room quiet.
    const mute = new GainNode(this.context, { gain: 0 });
    source.connect(capture).connect(mute).connect(this.context.destination);
    await this.context.resume();
  }

  stop() {
    this.stopped = true;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close();
    this.stream = this.context = null;
  }
}

// A file decoded, resampled to RATE mono, and sent at the pace it plays: the server sees what a microphone sends.
class FileSource {
  constructor(file) {
    this.file = file;
  }

  preparing() {
    return `Decoding ${this.file.name}…`;
  }

  describe() {
    const done = Math.min(this.sent || 0, this.total || 0) / RATE;
    return `Streaming ${this.file.name}: ${formatTime(done)} of ${formatTime((this.total || 0) / RATE)}`;
  }

  async start(onChunk, onEnd, onProgress) {
    const bytes = await this.file.arrayBuffer();
    const decoder = new AudioContext();
    let decoded;
    try {
      decoded = await decoder.decodeAudioData(bytes);
    } catch {
      throw new Error(`${this.file.name} could not be decoded by this browser`);
    } finally {
      decoder.close();
    }
    const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * RATE), RATE);
    const player = new AudioBufferSourceNode(offline, { buffer: decoded });
    player.connect(offline.destination);
    player.start();
    const rendered = (await offline.startRendering()).getChannelData(0);
    if (this.stopped) return;
    const samples = new Float32Array(rendered.length + Math.round(FILE_TAIL_S * RATE));
    samples.set(rendered);
    this.total = samples.length;
    this.sent = 0;
    const began = performance.now();
    // Paced by the clock rather than by counting ticks: throttled timers (a background tab) send more at once.
    const tick = () => {
      const due = Math.min(samples.length, Math.floor(((performance.now() - began) / 1000) * RATE));
      if (due > this.sent) {
        onChunk(samples.subarray(this.sent, due));
        this.sent = due;
        onProgress();
      }
      if (this.sent >= samples.length) {
        this.stop();
        onEnd();
      }
    };
    this.timer = setInterval(tick, CHUNK_S * 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = null;
  }
}

class RefusedError extends Error {
  constructor(code, explained) {
    super(`the server refused the live session (WebSocket closed with code ${code})`);
    this.code = code;
    this.explained = explained; // an `error` event already said why
  }
}

// One /v1/realtime connection. Turns are keyed by item id: deltas append to a turn, `completed` replaces its text.
class LiveSession {
  constructor(key, handlers) {
    this.key = key;
    this.handlers = handlers;
    this.id = null;
    this.open = new Set(); // speech started, not yet committed
    this.pending = new Set(); // committed, final text not yet here
    this.stopping = false;
    this.closed = false;
    this.opened = false;
    this.waiters = [];
    this.audioSent = false;
  }

  connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(realtimeUrl(), ["realtime", `openai-insecure-api-key.${this.key}`]);
      } catch (e) {
        reject(new Error(`the connection could not be opened: ${e.message}`));
        return;
      }
      this.ws = ws;
      ws.onmessage = (message) => {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch {
          return;
        }
        if (event.type === "session.created") {
          this.id = event.session.id;
          this.opened = true;
          this.send({
            type: "session.update",
            session: {
              type: "transcription",
              audio: {
                input: {
                  format: { type: "audio/pcm", rate: RATE },
                  transcription: { model: "whisper-1", language: null },
                  turn_detection: {
                    type: "server_vad",
                    threshold: 0.5,
                    prefix_padding_ms: 300,
                    silence_duration_ms: 500,
                  },
                },
              },
            },
          });
          resolve();
        }
        this.handle(event);
      };
      ws.onclose = (close) => {
        this.closed = true;
        this.settle();
        if (!this.opened) reject(new RefusedError(close.code, this.errorSeen));
        else this.handlers.onClose(close, this.stopping);
      };
    });
  }

  send(event) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  sendAudio(samples) {
    if (!samples.length) return;
    this.send({ type: "input_audio_buffer.append", audio: pcm16Base64(samples) });
    this.audioSent = true;
  }

  handle(event) {
    const h = this.handlers;
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        this.open.add(event.item_id);
        h.onTurn(event.item_id, { startMs: event.audio_start_ms });
        break;
      case "input_audio_buffer.committed":
        this.open.delete(event.item_id);
        this.pending.add(event.item_id);
        if (this.stopping) this.committedAfterStop = true;
        break;
      case "conversation.item.input_audio_transcription.delta":
        h.onDelta(event.item_id, event.delta);
        break;
      case "conversation.item.input_audio_transcription.completed":
        this.open.delete(event.item_id);
        this.pending.delete(event.item_id);
        h.onFinal(event.item_id, event.transcript, event.start, event.end);
        break;
      case "error": {
        const error = event.error || {};
        this.errorSeen = true;
        // Stop commits whatever is open; with nothing open the server says so, which is no news to anyone.
        if (this.stopping && error.code === "input_audio_buffer_commit_empty") {
          this.commitAnswered = true;
        } else {
          h.onError(error.message || "the server reported an error", error.code);
        }
        break;
      }
      default:
        break;
    }
    this.settle();
  }

  // Stop: commit the open turn, wait for every committed turn's final text, then close (the job completes then).
  async finish() {
    this.stopping = true;
    this.commitAnswered = false;
    this.committedAfterStop = false;
    this.send({ type: "input_audio_buffer.commit" });
    const answered = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), FINISH_TIMEOUT_MS);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      this.settle();
    });
    this.close();
    return answered;
  }

  settle() {
    const answered = this.commitAnswered || this.committedAfterStop;
    const done = this.closed || (answered && this.open.size === 0 && this.pending.size === 0);
    if (this.stopping && done) this.waiters.splice(0).forEach((wake) => wake());
  }

  close() {
    this.stopping = true;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}

// A refused handshake hides its reason from the page; the same key on a plain request gets the server's words.
async function refusalReason(error) {
  try {
    await apiFetch(new URL("../v1/models", location.href));
  } catch (e) {
    return e.message;
  }
  return `${error.message}; live transcription may be disabled on this server`;
}

// The page: one session at a time.

const turns = new Map();
let active = null; // {session, source}

function turnRow(itemId) {
  let row = turns.get(itemId);
  if (!row) {
    const li = document.createElement("li");
    li.className = "turn partial";
    li.dataset.itemId = itemId;
    const when = document.createElement("span");
    when.className = "when";
    const text = document.createElement("span");
    text.className = "text";
    li.append(when, text);
    ui.turns.append(li);
    row = { li, when, text, partial: "" };
    turns.set(itemId, row);
  }
  return row;
}

const handlers = {
  onTurn(itemId, { startMs }) {
    const row = turnRow(itemId);
    row.when.textContent = formatTime(startMs / 1000);
    row.text.textContent = "…";
    row.li.scrollIntoView({ block: "nearest" });
  },
  onDelta(itemId, delta) {
    const row = turnRow(itemId);
    row.partial += delta;
    row.text.textContent = row.partial;
  },
  onFinal(itemId, transcript, start, end) {
    const row = turnRow(itemId);
    row.li.classList.remove("partial");
    row.li.classList.add("final");
    if (start != null && end != null) row.when.textContent = `${formatTime(start)}–${formatTime(end)}`;
    row.text.textContent = transcript || "(nothing recognised)";
    row.li.classList.toggle("empty", !transcript);
  },
  onError(message, code) {
    showError(code ? `${message} (${code})` : message);
  },
  onClose(close, stopping) {
    if (!active) return;
    if (!stopping) setStatus(`The server ended the session (code ${close.code}).`);
    ended();
  },
};

function setRunning(running) {
  ui.startMic.disabled = running;
  ui.file.disabled = running;
  ui.fileButton.classList.toggle("disabled", running);
  ui.fileButton.setAttribute("aria-disabled", String(running));
  ui.stop.disabled = !running;
  ui.level.hidden = !running;
  ui.key.disabled = running;
}

async function start(source) {
  clearError();
  const key = ui.key.value.trim();
  if (!key) {
    showError("Enter an API key first.");
    ui.key.focus();
    return;
  }
  turns.clear();
  ui.turns.replaceChildren();
  ui.viewer.hidden = true;
  ui.session.hidden = true;
  setRunning(true);
  ui.stop.disabled = true; // until connected: there is nothing to stop before
  setStatus("Connecting…");
  const session = new LiveSession(key, handlers);
  active = { session, source };
  try {
    await session.connect();
  } catch (e) {
    active = null;
    setRunning(false);
    setStatus("Not connected.");
    if (!(e instanceof RefusedError)) showError(e.message);
    else if (!e.explained) showError(await refusalReason(e));
    return;
  }
  ui.sessionId.textContent = session.id;
  ui.session.hidden = false;
  ui.stop.disabled = false;
  setStatus(source.preparing());
  try {
    await source.start(
      (samples) => {
        ui.level.value = Math.min(1, peak(samples));
        session.sendAudio(samples);
      },
      () => stop("The file has been sent; finishing its last turn…"),
      () => setStatus(source.describe()),
    );
    if (active && active.source === source && !active.stopping) setStatus(source.describe());
  } catch (e) {
    showError(e.name === "NotAllowedError" ? "The browser was not allowed to use the microphone." : e.message);
    setStatus("Stopped.");
    source.stop();
    session.close();
  }
}

async function stop(message = "Finishing the last turn…") {
  if (!active || active.stopping) return;
  active.stopping = true;
  active.source.stop();
  ui.stop.disabled = true;
  setStatus(message);
  const answered = await active.session.finish();
  setStatus(
    answered
      ? "Stopped. The transcript is saved with the recording."
      : "Stopped. The last turn took too long to show here; the saved transcript has it.",
  );
  ended();
}

function ended() {
  if (!active) return;
  const { session, source } = active;
  active = null;
  source.stop();
  setRunning(false);
  // A session that never got audio has nothing worth opening.
  if (session.id && session.audioSent) {
    ui.viewerLink.href = `job.html?id=${encodeURIComponent(session.id)}`;
    ui.viewer.hidden = false;
  }
}

bindKeyField(ui.key, $("forget-key"));
ui.startMic.addEventListener("click", () => start(new MicSource()));
ui.file.addEventListener("change", () => {
  const file = ui.file.files[0];
  ui.file.value = ""; // picking the same file again starts another session
  if (file) start(new FileSource(file));
});
ui.stop.addEventListener("click", () => stop());
// The label stands in for the hidden file input, so it takes the keyboard too.
ui.fileButton.tabIndex = 0;
ui.fileButton.setAttribute("role", "button");
ui.fileButton.addEventListener("keydown", (event) => {
  if ((event.key === "Enter" || event.key === " ") && !ui.file.disabled) {
    event.preventDefault();
    ui.file.click();
  }
});
window.addEventListener("beforeunload", () => active && active.session.close());
