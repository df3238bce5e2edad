// The transcript viewer: a job's words beside its recording; the word being spoken is highlighted, a click seeks.
"use strict";

const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 5000;
const GAP_S = 0.3; // a word stays highlighted over a pause this short, so the highlight does not flicker

const ui = {
  key: document.getElementById("api-key"),
  jobId: document.getElementById("job-id"),
  audio: document.getElementById("audio"),
  audioNote: document.getElementById("audio-note"),
  words: document.getElementById("words"),
  srt: document.getElementById("download-srt"),
  vtt: document.getElementById("download-vtt"),
};

const jobId = new URLSearchParams(location.search).get("id");
let words = []; // {el, start, end}, in time order
let current = -1;

const jobPath = (suffix = "") => `../v1/jobs/${encodeURIComponent(jobId)}${suffix}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function load() {
  if (!ui.key.value.trim()) {
    showError("Enter an API key, then press Open.");
    ui.key.focus();
    return;
  }
  setStatus("Loading…");
  let wait = POLL_FIRST_MS;
  for (;;) {
    let job;
    try {
      job = await (await apiFetch(jobPath())).json();
    } catch (e) {
      setStatus("The job could not be loaded.");
      showError(e.message);
      return;
    }
    if (job.status === "completed") {
      render(job);
      loadAudio();
      return;
    }
    if (job.status === "failed") {
      setStatus("The job failed.");
      showError(job.error ? `${job.error.message} (${job.error.code})` : "the job failed");
      loadAudio();
      return;
    }
    const progress = job.progress ? ` (${Math.round(job.progress * 100)} %)` : "";
    setStatus(`The job is ${job.status}${progress}; the transcript appears when it is completed.`);
    await sleep(wait);
    wait = Math.min(POLL_MAX_MS, wait * 1.5);
  }
}

function render(job) {
  const result = job.result || { segments: [] };
  const fragment = document.createDocumentFragment();
  words = [];
  const speakers = new Set();
  let previousSpeaker = null;
  let previousParagraph = null;
  const summary = job.postprocess && job.postprocess.summary;
  if (summary) {
    const box = document.createElement("p");
    box.className = "summary";
    box.textContent = `Summary: ${summary}`;
    fragment.append(box);
  }
  for (const segment of result.segments) {
    const p = document.createElement("p");
    p.className = "segment";
    // The paragraphs step numbers segments by paragraph: a new paragraph gets more space before it.
    if (segment.paragraph != null && previousParagraph != null && segment.paragraph !== previousParagraph) {
      p.classList.add("paragraph-start");
    }
    previousParagraph = segment.paragraph;
    const stamp = document.createElement("button");
    stamp.type = "button";
    stamp.className = "stamp";
    stamp.textContent = formatTime(segment.start);
    stamp.setAttribute("aria-label", `Play from ${formatTime(segment.start)}`);
    stamp.addEventListener("click", () => seek(segment.start));
    p.append(stamp, " ");
    if (segment.speaker) {
      // A diarized job: the speaker opens each segment, and only where it changes is it shown in full.
      const who = document.createElement("span");
      who.className = "speaker";
      who.dataset.speaker = segment.speaker;
      who.textContent = segment.speaker;
      if (segment.speaker === previousSpeaker) who.classList.add("same");
      previousSpeaker = segment.speaker;
      speakers.add(segment.speaker);
      p.append(who, " ");
    }
    if (segment.words && segment.words.length) {
      segment.words.forEach((word, n) => {
        const span = document.createElement("span");
        span.className = "word";
        span.textContent = word.word.trim();
        span.dataset.index = String(words.length);
        span.dataset.start = String(word.start);
        span.dataset.end = String(word.end);
        span.title = `${formatTime(word.start)} · confidence ${Math.round(word.probability * 100)} %`;
        words.push({ el: span, start: word.start, end: word.end });
        if (n) p.append(" ");
        p.append(span);
      });
    } else {
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = segment.text.trim();
      p.append(text);
    }
    fragment.append(p);
  }
  ui.words.replaceChildren(fragment);
  current = -1;
  const facts = [`${words.length} words`];
  if (job.duration != null) facts.push(formatTime(job.duration));
  if (job.language) facts.push(`language ${job.language}`);
  if (speakers.size) facts.push(`${speakers.size} speaker${speakers.size === 1 ? "" : "s"}`);
  setStatus(result.segments.length ? `Completed: ${facts.join(" · ")}.` : "Completed, but nothing was recognised.");
  ui.srt.disabled = ui.vtt.disabled = false;
}

// The audio route needs the key, which an <audio src> cannot send: fetch it and play it from a blob.
async function loadAudio() {
  try {
    const blob = await (await apiFetch(jobPath("/audio"))).blob();
    ui.audio.src = URL.createObjectURL(blob);
  } catch (e) {
    ui.audioNote.textContent = `The recording cannot be played: ${e.message}`;
    ui.audioNote.hidden = false;
  }
}

function seek(seconds) {
  ui.audio.currentTime = seconds;
  highlight();
}

// The last word started by `t`, unless the pause after it is longer than GAP_S; -1 for none.
function wordAt(t) {
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= t + 0.01) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found >= 0 && t <= words[found].end + GAP_S ? found : -1;
}

function highlight() {
  const next = wordAt(ui.audio.currentTime);
  if (next === current) return;
  if (current >= 0) words[current].el.classList.remove("current");
  current = next;
  if (current >= 0) {
    words[current].el.classList.add("current");
    if (!ui.audio.paused) words[current].el.scrollIntoView({ block: "nearest" });
  }
}

// timeupdate fires only a few times a second; while playing, follow every frame instead.
function follow() {
  highlight();
  if (!ui.audio.paused) requestAnimationFrame(follow);
}

async function download(format) {
  clearError();
  try {
    const blob = await (await apiFetch(jobPath(`?format=${format}`))).blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `${jobId}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000); // the download reads the blob after click() returns
  } catch (e) {
    showError(`The ${format.toUpperCase()} file could not be downloaded: ${e.message}`);
  }
}

bindKeyField(ui.key, document.getElementById("forget-key"));
ui.words.addEventListener("click", (event) => {
  const span = event.target.closest(".word");
  if (span) seek(words[Number(span.dataset.index)].start);
});
ui.audio.addEventListener("play", () => requestAnimationFrame(follow));
for (const name of ["seeked", "timeupdate", "pause"]) ui.audio.addEventListener(name, highlight);
ui.srt.addEventListener("click", () => download("srt"));
ui.vtt.addEventListener("click", () => download("vtt"));

if (jobId) {
  ui.jobId.value = jobId;
  document.title = `scribeflow · ${jobId}`;
  load();
} else {
  setStatus("Enter a job id to open its transcript.");
}
