// Kinto attachments demo: plain JavaScript, no build step, talks to Kinto's HTTP API.
"use strict";

const state = { server: "", authorization: "", bucket: "", collection: "", baseUrl: "" };
const $ = (id) => document.getElementById(id);

function say(text, kind) {
  const message = $("message");
  message.textContent = text;
  message.className = kind || "";
}

function collectionPath() {
  return `/buckets/${encodeURIComponent(state.bucket)}/collections/${encodeURIComponent(state.collection)}`;
}

function recordPath(id) {
  return `${collectionPath()}/records/${encodeURIComponent(id)}`;
}

// One call to Kinto: the parsed JSON answer, or an Error with Kinto's own message.
async function api(method, path, body, headers) {
  const response = await fetch(state.server + path, {
    method,
    headers: { Authorization: state.authorization, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const error = new Error(explained(json) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return json;
}

// Kinto's error message, and what its details say the user can do about it.
function explained(error) {
  const hints = (Array.isArray(error.details) ? error.details : [])
    .map((detail) => detail && detail.description)
    .filter((text) => text && text !== error.message && !(error.message || "").includes(text));
  return [error.message, ...hints].filter(Boolean).join(" ");
}

function fillList(id, items) {
  const list = $(id);
  list.replaceChildren(...items.map((item) => Object.assign(document.createElement("option"), { value: item.id })));
}

async function signIn(event) {
  event.preventDefault();
  state.server = $("server").value.replace(/\/+$/, "");
  state.authorization = "Basic " + btoa(`${$("user").value}:${$("password").value}`);
  try {
    const root = await api("GET", "/");
    if (!root.user) throw new Error("the server did not accept these credentials");
    const capability = (root.capabilities || {}).attachments;
    if (!capability) throw new Error("this server has no attachments capability");
    state.baseUrl = capability.base_url || new URL("/", state.server).href;
    $("allowed").textContent = capability.extensions
      ? `Allowed: ${capability.extensions.map((extension) => "." + extension).join(" ")} (unless this collection says otherwise).`
      : "Any file may be uploaded.";
    $("whoami").textContent = `Signed in as ${$("user").value} (${root.user.id}).`;
    $("collection-section").hidden = false;
    fillList("buckets", (await api("GET", "/buckets")).data);
    say("Signed in.", "ok");
  } catch (error) {
    say(`Sign-in failed: ${error.message}`, "error");
  }
}

// Open a bucket or collection, creating it when it does not exist yet.
async function ensure(path) {
  try {
    await api("GET", path);
  } catch (error) {
    if (error.status !== 403 && error.status !== 404) throw error;
    await api("PUT", path, { data: {} }, { "If-None-Match": "*" });
  }
}

async function pick(event) {
  event.preventDefault();
  state.bucket = $("bucket").value.trim();
  state.collection = $("collection").value.trim();
  try {
    await ensure(`/buckets/${encodeURIComponent(state.bucket)}`);
    fillList("collections", (await api("GET", `/buckets/${encodeURIComponent(state.bucket)}/collections`)).data);
    await ensure(collectionPath());
    $("upload-section").hidden = false;
    $("records-section").hidden = false;
    await loadRecords();
    say(`Opened ${state.bucket}/${state.collection}.`, "ok");
  } catch (error) {
    say(`Cannot open ${state.bucket}/${state.collection}: ${error.message}`, "error");
  }
}

// POST the file as the record's attachment with XMLHttpRequest, for upload progress.
function sendAttachment(recordId, file, data) {
  const form = new FormData();
  form.append("attachment", file, file.name);
  if (data) form.append("data", JSON.stringify(data));
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${state.server}${recordPath(recordId)}/attachment`);
    xhr.setRequestHeader("Authorization", state.authorization);
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      bar.value = (100 * event.loaded) / event.total;
      $("progress-text").textContent = `${file.name}: ${humanSize(event.loaded)} of ${humanSize(event.total)}`;
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        bar.value = 100;
        resolve(body);
      } else {
        reject(new Error(explained(body) || `${xhr.status} ${xhr.statusText}`));
      }
    };
    xhr.onerror = () => reject(new Error("network error"));
    xhr.send(form);
  });
}

// The same upload with tus 1.0, in pieces: when the connection drops, wait until the
// browser is online again, ask the server where the upload stands, and go on from there.
// An unfinished upload is remembered (localStorage) by record URL and file, so that a
// reloaded page resumes it too.
const PIECE = 1024 * 1024;
const TUS = { "Tus-Resumable": "1.0.0" };

async function sendResumable(recordId, file, data) {
  const url = `${state.server}${recordPath(recordId)}/attachment`;
  const key = `tus ${url} ${file.name} ${file.size} ${file.lastModified}`;
  let location = localStorage.getItem(key);
  let offset = location ? await tusOffset(location) : null;
  if (offset === null) {
    const metadata = { filename: file.name, filetype: file.type || "application/octet-stream" };
    if (data) metadata.data = JSON.stringify(data);
    const created = await fetch(url, {
      method: "POST",
      headers: {
        ...TUS,
        Authorization: state.authorization,
        "Upload-Length": String(file.size),
        "Upload-Metadata": Object.entries(metadata)
          .map(([name, value]) => `${name} ${btoa(unescape(encodeURIComponent(value)))}`)
          .join(","),
      },
    });
    if (created.status !== 201) throw new Error(await failure(created));
    location = created.headers.get("Location");
    localStorage.setItem(key, location);
    offset = 0;
  }
  showProgress(file, offset);
  while (offset < file.size) {
    let response;
    try {
      response = await fetch(location, {
        method: "PATCH",
        headers: {
          ...TUS,
          Authorization: state.authorization,
          "Content-Type": "application/offset+octet-stream",
          "Upload-Offset": String(offset),
        },
        body: file.slice(offset, offset + PIECE),
      });
    } catch (_) {
      say(`Connection lost at ${humanSize(offset)}: waiting to go on...`, "error");
      await online();
      const now = await tusOffset(location);
      if (now === null) throw new Error("the server no longer has this upload");
      offset = now;
      say(`Resuming at ${humanSize(offset)}.`, "ok");
      continue;
    }
    if (response.status !== 204) {
      localStorage.removeItem(key);
      throw new Error(await failure(response));
    }
    offset = Number(response.headers.get("Upload-Offset"));
    showProgress(file, offset);
  }
  localStorage.removeItem(key);
  return (await api("GET", recordPath(recordId))).data.attachment;
}

async function tusOffset(location) {
  try {
    const response = await fetch(location, {
      method: "HEAD",
      headers: { ...TUS, Authorization: state.authorization },
    });
    return response.status === 200 ? Number(response.headers.get("Upload-Offset")) : null;
  } catch (_) {
    return null;
  }
}

function online() {
  return new Promise((resolve) => {
    if (navigator.onLine) setTimeout(resolve, 1000);
    else window.addEventListener("online", () => setTimeout(resolve, 200), { once: true });
  });
}

async function failure(response) {
  const text = await response.text();
  try {
    return explained(JSON.parse(text)) || `${response.status} ${response.statusText}`;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

function showProgress(file, sent) {
  const bar = $("progress");
  bar.hidden = false;
  bar.value = file.size ? (100 * sent) / file.size : 100;
  $("progress-text").textContent = `${file.name}: ${humanSize(sent)} of ${humanSize(file.size)}`;
}

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx".replace(/x/g, () => Math.floor(Math.random() * 16).toString(16));
}

async function upload(event) {
  event.preventDefault();
  const file = $("file").files[0];
  let data;
  try {
    data = JSON.parse($("data").value || "{}");
    if (data === null || typeof data !== "object" || Array.isArray(data)) throw new Error("not an object");
  } catch (error) {
    say(`Record fields must be a JSON object (${error.message}).`, "error");
    return;
  }
  const recordId = $("record-id").value.trim() || newId();
  try {
    const send = $("resumable").checked ? sendResumable : sendAttachment;
    const meta = await send(recordId, file, data);
    say(`Uploaded ${meta.filename} (${humanSize(meta.size)}) to record ${recordId}.`, "ok");
    $("upload").reset();
    await loadRecords();
  } catch (error) {
    say(`Upload failed: ${error.message}`, "error");
  }
}

function humanSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit ? size.toFixed(1) : size} ${units[unit]}`;
}

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

function button(label, action) {
  const element = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  element.addEventListener("click", action);
  return element;
}

function replaceButton(record) {
  const picker = Object.assign(document.createElement("input"), { type: "file", hidden: true });
  picker.addEventListener("change", async () => {
    try {
      const meta = await sendAttachment(record.id, picker.files[0], null);
      say(`Replaced the attachment of ${record.id} with ${meta.filename}.`, "ok");
      await loadRecords();
    } catch (error) {
      say(`Replace failed: ${error.message}`, "error");
    }
  });
  return [button("Replace", () => picker.click()), picker];
}

async function removeAttachment(record) {
  try {
    await api("DELETE", `${recordPath(record.id)}/attachment`);
    say(`Deleted the attachment of ${record.id}.`, "ok");
    await loadRecords();
  } catch (error) {
    say(`Delete failed: ${error.message}`, "error");
  }
}

// What a private file's location looks like: its record's download URL, naming the file.
const PRIVATE_LOCATION = /\/records\/[^/?]+\/attachment\?(?:.*&)?key=/;

async function privateBlobUrl(url) {
  const response = await fetch(url, { headers: { Authorization: state.authorization } });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return URL.createObjectURL(await response.blob());
}

async function downloadPrivate(url, filename) {
  try {
    const blobUrl = await privateBlobUrl(url);
    const save = Object.assign(document.createElement("a"), { href: blobUrl, download: filename });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
    say(`Downloaded ${filename} (private: fetched with your credentials).`, "ok");
  } catch (error) {
    say(`Download failed: ${error.message}`, "error");
  }
}

function recordRow(record) {
  const row = document.createElement("tr");
  row.dataset.id = record.id;
  const attachment = record.attachment;
  const fields = Object.fromEntries(
    Object.entries(record).filter(([key]) => !["id", "last_modified", "attachment", "schema"].includes(key)),
  );
  const about = cell(Object.assign(document.createElement("code"), { textContent: record.id }));
  if (Object.keys(fields).length) about.append(document.createElement("br"), JSON.stringify(fields));
  if (!attachment) {
    row.append(cell(""), cell("(no attachment)"), cell(""), cell(""), about, cell(...replaceButton(record)));
    return row;
  }
  let url = new URL(attachment.location, state.baseUrl).href;
  const isPrivate = PRIVATE_LOCATION.test(url);
  if (isPrivate) {
    // Credentials go to the server signed in to, whatever host a location names.
    const named = new URL(url);
    url = new URL(named.pathname + named.search, state.server).href;
  }
  const preview = cell("");
  if ((attachment.mimetype || "").startsWith("image/")) {
    const image = Object.assign(document.createElement("img"), { alt: attachment.filename });
    if (isPrivate) {
      privateBlobUrl(url).then((blobUrl) => { image.src = blobUrl; }, () => {});
    } else {
      image.src = url;
    }
    preview.append(image);
  }
  const link = Object.assign(document.createElement("a"), {
    href: url, textContent: attachment.filename, target: "_blank", rel: "noopener", className: "file-link",
  });
  if (isPrivate) {
    // A private file's location is its record's download URL: the browser would follow
    // a plain link without the credentials, so the page fetches it with them.
    link.classList.add("private");
    link.addEventListener("click", (event) => {
      event.preventDefault();
      downloadPrivate(url, attachment.filename);
    });
  }
  row.append(
    preview,
    cell(link),
    cell(humanSize(attachment.size)),
    cell(attachment.mimetype || ""),
    about,
    cell(...replaceButton(record), button("Delete", () => removeAttachment(record))),
  );
  return row;
}

async function loadRecords() {
  const records = (await api("GET", `${collectionPath()}/records?_sort=-last_modified`)).data;
  $("records").tBodies[0].replaceChildren(...records.map(recordRow));
  $("empty").hidden = records.length > 0;
}

$("server").value = new URL("/v1", window.location.href).href;
$("signin").addEventListener("submit", signIn);
$("pick").addEventListener("submit", pick);
$("upload").addEventListener("submit", upload);
$("refresh").addEventListener("click", () => loadRecords().catch((error) => say(error.message, "error")));
