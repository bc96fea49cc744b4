// Hash routes: #/ (live directory), #/watch/<id>, #/console, #/console/<id>.

import { api, loadConfig, session } from "./api.js";
import { copyText, formatCount, formatDate, guarded, h, showError } from "./dom.js";
import { live } from "./live.js";
import { renderWatch } from "./player.js";
import { publishCamera } from "./whip.js";

const DIRECTORY_REFRESH_MS = 10000;

const main = document.getElementById("main");
let cleanup = () => {};

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

function updateWho() {
  const who = document.getElementById("who");
  const current = session.get();
  who.replaceChildren();
  if (current?.username) {
    who.append(`Signed in as ${current.username} `, h("button", { type: "button", class: "link", onclick: () => {
      session.clear();
      live.restart();
      route();
    } }, "Log out"));
  }
}

// --- Directory -------------------------------------------------------------------------------------------

function renderDirectory() {
  const list = h("ul", { class: "cards", id: "directory", "aria-live": "polite" });
  main.replaceChildren(heading("Live now"), list);
  const subscriptions = new Map();

  const card = (stream) => {
    const count = h("span", { class: "count" }, formatCount(stream.viewer_count));
    const item = h("li", { class: "card", "data-stream-id": stream.id },
      h("a", { href: `#/watch/${stream.id}` },
        h("img", { src: stream.thumbnail_url, alt: `Thumbnail of ${stream.title}`, loading: "lazy",
          width: 320, height: 180 }),
        h("span", { class: "title" }, stream.title)),
      h("span", { class: "muted" }, stream.owner_username, " · "), count);
    // Counts move while the page is open; the cards stay subscribed until the list changes.
    if (!subscriptions.has(stream.id)) {
      subscriptions.set(stream.id, live.subscribe(stream.id, (message) => {
        // `viewers` and `subscribed` carry the count (docs/contracts.md, Stream events); other messages none.
        const value = Number(message.viewer_count);
        const target = list.querySelector(`[data-stream-id="${stream.id}"] .count`);
        if (target && Number.isFinite(value)) target.textContent = formatCount(value);
        if (message.type === "stream.offline") refresh();
      }));
    }
    return item;
  };

  const refresh = () => guarded(async () => {
    const { items } = await api.liveStreams();
    const ids = new Set(items.map((s) => s.id));
    for (const [id, stop] of subscriptions) {
      if (!ids.has(id)) {
        stop();
        subscriptions.delete(id);
      }
    }
    list.replaceChildren(...(items.length ? items.map(card) : [h("li", { class: "empty" }, "Nobody is live right now.")]));
  });

  refresh();
  const timer = setInterval(refresh, DIRECTORY_REFRESH_MS);
  return () => {
    clearInterval(timer);
    for (const stop of subscriptions.values()) stop();
  };
}

// --- Broadcaster console ---------------------------------------------------------------------------------

function field(label, attrs) {
  const id = attrs.id;
  return h("p", { class: "field" }, h("label", { for: id }, label), h("input", attrs));
}

function renderSignIn() {
  const signup = h("form", { id: "signup-form", "aria-labelledby": "signup-heading" },
    h("h2", { id: "signup-heading" }, "Create an account"),
    field("Email", { id: "signup-email", name: "email", type: "email", required: true, autocomplete: "email" }),
    field("Username", { id: "signup-username", name: "username", required: true, autocomplete: "username" }),
    field("Password", { id: "signup-password", name: "password", type: "password", required: true,
      autocomplete: "new-password", minlength: 8 }),
    h("button", { type: "submit" }, "Sign up"));
  const login = h("form", { id: "login-form", "aria-labelledby": "login-heading" },
    h("h2", { id: "login-heading" }, "Log in"),
    field("Username or email", { id: "login-username", name: "login", required: true, autocomplete: "username" }),
    field("Password", { id: "login-password", name: "password", type: "password", required: true,
      autocomplete: "current-password" }),
    h("button", { type: "submit" }, "Log in"));
  const status = h("p", { class: "notice", "aria-live": "polite", id: "signin-status" });

  signup.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(signup);
    guarded(async () => {
      const created = await api.signup(data.get("email"), data.get("username"), data.get("password"));
      status.textContent = `Account ${created.username} created. Log in to continue.`;
      login.elements.login.value = created.username;
      login.elements.password.focus();
    });
  });
  login.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(login);
    guarded(async () => {
      await api.login(data.get("login"), data.get("password"));
      live.restart();
      updateWho();
      route();
    });
  });
  main.replaceChildren(heading("Broadcast"), status, h("div", { class: "columns" }, signup, login));
}

function secretRow(label, value, id) {
  const input = h("input", { id, value, readonly: true, spellcheck: "false", class: "secret" });
  const button = h("button", { type: "button", onclick: async () => {
    button.textContent = (await copyText(value, input)) ? "Copied" : "Select and copy";
  } }, "Copy");
  return h("p", { class: "field" }, h("label", { for: id }, label), h("span", { class: "row" }, input, button));
}

function browserPublisher(whipUrl, streamKey) {
  const state = h("span", { id: "browser-live-state", role: "status" }, "Not live");
  const preview = h("video", { id: "browser-preview", muted: true, autoplay: true, playsinline: true, hidden: true });
  let publishing = null;
  const button = h("button", { type: "button", id: "go-live-browser", onclick: () => guarded(async () => {
    button.disabled = true;
    try {
      if (publishing) {
        await publishing.stop();
        publishing = null;
        preview.hidden = true;
        state.textContent = "Stopped";
        button.textContent = "Go live from this browser";
        return;
      }
      state.textContent = "Connecting…";
      publishing = await publishCamera(whipUrl, streamKey, { onState: (s) => { state.textContent = s; } });
      preview.srcObject = publishing.media;
      preview.hidden = false;
      button.textContent = "Stop";
    } finally {
      button.disabled = false;
    }
  }) }, "Go live from this browser");
  return h("div", { class: "browser-publisher" }, h("p", {}, button, " ", state), preview);
}

function ingestPanel(ingest, streamKey) {
  const rtmpUrl = ingest.rtmp_url;
  return h("section", { class: "panel once", id: "ingest-panel", "aria-labelledby": "ingest-heading" },
    h("h2", { id: "ingest-heading" }, "Ingest settings"),
    h("p", { class: "warning" }, "The stream key is shown only now. Copy it somewhere safe; ",
      "you can create a new key later, but this one cannot be shown again."),
    secretRow("Server (RTMP URL)", rtmpUrl, "ingest-rtmp-url"),
    secretRow("Stream key", streamKey, "ingest-stream-key"),
    secretRow("WHIP URL (OBS WHIP output: the key is the Bearer token)", ingest.whip_url, "ingest-whip-url"),
    secretRow("SRT URL (streamid #!::r=live/<key>,m=publish)", ingest.srt_url, "ingest-srt-url"),
    browserPublisher(ingest.whip_url, streamKey),
    h("details", {},
      h("summary", {}, "OBS and ffmpeg settings"),
      h("p", {}, "OBS: Settings → Stream → Service “Custom…”, paste the server and the key. ",
        "Output: x264 (or hardware H.264), keyframe interval 2 s, CBR; audio AAC 48 kHz."),
      h("pre", {}, `ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -g 60 -keyint_min 60 \\\n` +
        `  -c:a aac -b:a 128k -ar 48000 -f flv "${rtmpUrl}/<stream key>"`)));
}

function renderConsole() {
  const current = session.get();
  if (!current?.access_token) {
    renderSignIn();
    return () => {};
  }
  const created = h("div", { id: "created" });
  const mine = h("tbody", { id: "my-streams" });
  const form = h("form", { id: "create-stream-form", "aria-labelledby": "create-heading" },
    h("h2", { id: "create-heading" }, "Create a stream"),
    field("Title", { id: "stream-title", name: "title", required: true, maxlength: 140 }),
    field("Description", { id: "stream-description", name: "description", maxlength: 2000 }),
    field("Tags (comma-separated)", { id: "stream-tags", name: "tags" }),
    h("p", { class: "field inline" }, h("input", { id: "stream-record", name: "record", type: "checkbox", checked: true }),
      h("label", { for: "stream-record" }, "Record for replay")),
    h("button", { type: "submit" }, "Create stream"));

  const loadMine = () => guarded(async () => {
    const { items } = await api.myStreams(current.user_id);
    mine.replaceChildren(...(items.length ? items.map((s) => h("tr", { "data-stream-id": s.id },
      h("td", {}, s.title), h("td", {}, h("span", { class: "badge", "data-status": s.status }, s.status)),
      h("td", {}, formatDate(s.created_at)),
      h("td", {}, h("a", { href: `#/watch/${s.id}` }, "Watch"), " · ", h("a", { href: `#/console/${s.id}` }, "Manage"))))
      : [h("tr", {}, h("td", { colspan: 4 }, "No streams yet."))]));
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const tags = String(data.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
    guarded(async () => {
      const stream = await api.createStream({ title: data.get("title"), description: data.get("description") || "",
        tags, record: data.get("record") === "on" });
      created.replaceChildren(h("p", {}, "Created ", h("a", { href: `#/console/${stream.id}` }, stream.title), "."),
        ingestPanel(stream.ingest, stream.ingest.stream_key));
      form.reset();
      loadMine();
      document.getElementById("ingest-stream-key").focus();
    });
  });

  main.replaceChildren(heading("Broadcast"), form, created,
    h("section", { "aria-labelledby": "mine-heading" }, h("h2", { id: "mine-heading" }, "Your streams"),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Title"), h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Actions"))), mine)));
  loadMine();
  return () => {};
}

function renderManage(streamId) {
  if (!session.get()?.access_token) {
    renderSignIn();
    return () => {};
  }
  const title = heading("Manage stream");
  const status = h("span", { class: "badge", id: "manage-status" }, "…");
  const keys = h("tbody", { id: "keys" });
  const newKey = h("div", { id: "new-key" });
  const stats = h("dl", { class: "stats", id: "analytics" });
  const timeline = h("ol", { class: "timeline" });
  let rtmpUrl = "";

  const loadStream = () => guarded(async () => {
    const stream = await api.stream(streamId);
    title.textContent = stream.title;
    status.textContent = stream.status;
    status.dataset.status = stream.status;
  });
  const loadKeys = () => guarded(async () => {
    const { items } = await api.keys(streamId);
    keys.replaceChildren(...items.map((key) => h("tr", {},
      h("td", {}, key.name), h("td", {}, h("code", {}, key.key_id)), h("td", {}, formatDate(key.created_at)),
      h("td", {}, formatDate(key.last_used_at)),
      h("td", {}, h("button", { type: "button", class: "danger", onclick: () => {
        if (!window.confirm(`Revoke key ${key.name}? A publisher using it is disconnected.`)) return;
        guarded(async () => {
          await api.revokeKey(streamId, key.key_id);
          loadKeys();
        });
      } }, "Revoke")))));
  });
  const loadAnalytics = () => guarded(async () => {
    const a = await api.analytics(streamId);
    const row = (label, value) => [h("dt", {}, label), h("dd", {}, value ?? "—")];
    stats.replaceChildren(...row("Concurrent viewers", a.concurrent_viewers), ...row("Peak viewers", a.peak_viewers),
      ...row("Total views", a.total_views), ...row("Watch minutes", Number(a.watch_minutes).toFixed(1)),
      ...row("Ingest bitrate", a.ingest?.bitrate_kbps ? `${Math.round(a.ingest.bitrate_kbps)} kbps` : null),
      ...row("Ingest", a.ingest?.width ? `${a.ingest.width}×${a.ingest.height} @ ${a.ingest.fps} fps` : null),
      ...row("Keyframe interval", a.ingest?.keyframe_interval_s ? `${a.ingest.keyframe_interval_s} s` : null));
    timeline.replaceChildren(...(a.timeline || []).slice(-10).map((p) =>
      h("li", {}, `${formatDate(p.t)}: ${formatCount(p.viewers)}`, p.bitrate_kbps ? `, ${p.bitrate_kbps} kbps` : "")));
  });

  const keyForm = h("form", { id: "create-key-form" },
    field("Key name", { id: "key-name", name: "name", maxlength: 64, placeholder: "default" }),
    h("button", { type: "submit" }, "Create key"));
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = new FormData(keyForm).get("name");
    guarded(async () => {
      const key = await api.createKey(streamId, name || undefined);
      newKey.replaceChildren(ingestPanel(rtmpUrl, key.stream_key));
      keyForm.reset();
      loadKeys();
    });
  });

  main.replaceChildren(title, h("p", { class: "meta" }, status, " · ", h("a", { href: `#/watch/${streamId}` }, "Watch")),
    h("section", { "aria-labelledby": "keys-heading" }, h("h2", { id: "keys-heading" }, "Stream keys"),
      h("table", {}, h("thead", {}, h("tr", {}, ...["Name", "Key id", "Created", "Last used", ""].map((c) =>
        h("th", { scope: "col" }, c)))), keys), keyForm, newKey),
    h("section", { "aria-labelledby": "analytics-heading" }, h("h2", { id: "analytics-heading" }, "Analytics"),
      stats, timeline, h("button", { type: "button", onclick: () => { loadStream(); loadAnalytics(); } }, "Refresh")));

  loadConfig().then((c) => { rtmpUrl = c.rtmpUrl; });
  loadStream();
  loadKeys();
  loadAnalytics();
  const unsubscribe = live.subscribe(streamId, (message) => {
    if (message.type?.startsWith("stream.")) loadStream();
  });
  return unsubscribe;
}

// --- Router ----------------------------------------------------------------------------------------------

function route() {
  cleanup();
  const [, view = "", id = ""] = (location.hash || "#/").split("/");
  const routes = {
    "": () => renderDirectory(),
    watch: () => renderWatch(main, decodeURIComponent(id)),
    console: () => (id ? renderManage(decodeURIComponent(id)) : renderConsole()),
  };
  cleanup = (routes[view] || routes[""])() || (() => {});
  updateWho();
  main.querySelector("h1")?.focus();
}

window.addEventListener("hashchange", route);
window.addEventListener("streamforge:signed-out", () => {
  updateWho();
  showError(new Error("Your session has ended; log in again."));
});
loadConfig().then(route, showError);
