// What both pages share: the API key (kept in this browser only), authenticated requests, errors, time formats.
"use strict";

const KEY_STORAGE = "scribeflow.apiKey";

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled (private mode, policy): the field still works for this page
  }
}

function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* not kept, as above */
  }
}

// Binds an <input> to the stored key: filled on load, saved as it is typed, and a "Forget" button clears it.
function bindKeyField(input, forgetButton) {
  input.value = storedKey();
  input.addEventListener("input", () => storeKey(input.value.trim()));
  if (forgetButton) {
    forgetButton.addEventListener("click", () => {
      input.value = "";
      storeKey("");
      input.focus();
    });
  }
}

function currentKey() {
  const input = document.getElementById("api-key");
  return (input ? input.value : storedKey()).trim();
}

class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The API's errors are OpenAI's `{"error": {"message", "code", ...}}`; anything else (a proxy's page) keeps its status.
async function apiError(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      message = body.error.message;
      code = body.error.code || null;
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(message, response.status, code);
}

async function apiFetch(path, options = {}) {
  const key = currentKey();
  const headers = new Headers(options.headers || {});
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(`the server could not be reached (${e.message})`, 0, "network");
  }
  if (!response.ok) throw await apiError(response);
  return response;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = document.getElementById("error");
  box.textContent = "";
  box.hidden = true;
}

function setStatus(message) {
  document.getElementById("status").textContent = message;
}

// 83.4 -> "1:23.4"; an hour or more -> "1:02:03.4".
function formatTime(seconds) {
  const tenths = Math.max(0, Math.round(seconds * 10));
  const s = Math.floor(tenths / 10) % 60;
  const m = Math.floor(tenths / 600) % 60;
  const h = Math.floor(tenths / 36000);
  const ss = `${String(s).padStart(2, "0")}.${tenths % 10}`;
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
