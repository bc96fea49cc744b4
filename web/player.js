// The watch page: hls.js (or native HLS) playback, live status and viewer count, and the viewer session whose
// token makes the analytics heartbeats count (docs/viewers.md).

import { api } from "./api.js";
import { formatCount, guarded, h, showError } from "./dom.js";
import { live } from "./live.js";

const HEARTBEAT_MS = 15000;
// A session is renewed when this share of its token's lifetime has passed, so heartbeats never carry an expired one.
const RENEW_AT = 0.8;
const VIEWER_KEY = "streamforge.viewer_id";
// Right after a stream goes live its first playlist may be seconds away; keep trying for about a minute.
const MAX_LOAD_RETRIES = 20;
const RETRY_MS = 3000;

const ENGINE_KEY = "streamforge.engine";
const loading = {};

// hls.js and dash.js (both play the same CMAF segments) ship as UMD bundles, served from web/node_modules (our
// own origin): window.Hls, window.dashjs.
function loadScript(src, global) {
  if (!loading[src]) {
    loading[src] = new Promise((resolve) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window[global] || null);
      script.onerror = () => resolve(null);
      document.head.append(script);
    });
  }
  return loading[src];
}
const loadHls = () => loadScript("/node_modules/hls.js/dist/hls.min.js", "Hls");
const loadDash = () => loadScript("/node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js", "dashjs");

// Anonymous and stable per browser, so analytics counts a returning viewer once.
function viewerId() {
  let id = localStorage.getItem(VIEWER_KEY);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = "v_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(VIEWER_KEY, id);
  }
  return id;
}

// Low-latency HLS: hls.js takes its target latency from the playlist's PART-HOLD-BACK only when no
// liveSyncDuration* option is set, and plays up to this much faster to catch up when it falls behind.
const LOW_LATENCY_CONFIG = { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, enableWorker: true };
const STANDARD_CONFIG = { lowLatencyMode: false, liveSyncDurationCount: 3, enableWorker: true };
const LATENCY_KEY = "streamforge.latency_mode";

class Player {
  constructor(video, setState) {
    this.video = video;
    this.setState = setState;
    this.hls = null;
    this.dash = null;
    this.url = null;
    this.retries = 0;
    this.retryTimer = null;
    this.nativeError = null;
    this.engine = "hls";
    // Called when the LL origin cannot answer: the player then plays this URL (the plain playlists) instead.
    this.fallback = null;
  }

  // `engine`: "hls", "ll" (hls.js in low-latency mode; native players get `fallbackUrl`) or "dash".
  async start(url, engine = "hls", fallbackUrl = null) {
    // Set for as long as this URL is starting or playing, so repeated calls (socket and poll) attach once.
    if (this.url === url) return;
    this.stop();
    this.url = url;
    this.engine = engine;
    this.fallbackUrl = fallbackUrl;
    this.retries = 0;
    this.setState("loading");
    this.video.dataset.engine = engine;
    if (engine === "dash") {
      const dashjs = await loadDash();
      if (this.url !== url) return;
      // dash.js 5 has no supportsMediaSource(); it needs Media Source Extensions (or Safari's managed ones).
      if (dashjs && ("MediaSource" in window || "ManagedMediaSource" in window)) this.attachDash(dashjs);
      else this.fail("this browser cannot play DASH");
      return;
    }
    const Hls = await loadHls();
    if (this.url !== url) return;
    if (Hls && Hls.isSupported()) {
      this.attachHls(Hls);
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      // Safari/AVPlayer get the plain playlists; this.url stays the one asked for, so a repeated start is a no-op.
      this.attachNative(engine === "ll" && fallbackUrl ? fallbackUrl : url);
    } else {
      this.fail("this browser cannot play HLS");
    }
  }

  attachHls(Hls) {
    const hls = new Hls(this.engine === "ll" ? LOW_LATENCY_CONFIG : STANDARD_CONFIG);
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => this.play());
    hls.on(Hls.Events.ERROR, (_event, data) => {
      // The buffer ran dry while playing (not fatal): counted on the element, where tests and the bench read it.
      if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && this.hls === hls) {
        this.video.dataset.stalls = String(Number(this.video.dataset.stalls || 0) + 1);
      }
      if (!data.fatal || this.hls !== hls) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR && this.engine === "ll" && this.fallbackUrl) {
        // The LL origin is the ingesting task: if it cannot answer (not live there, or the task died),
        // the plain playlists in the bucket still can.
        const url = this.fallbackUrl;
        if (this.fallback) this.fallback();
        this.start(url, "hls");
      } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR && this.retries < MAX_LOAD_RETRIES) {
        // Usually the playlist is not written yet: start over shortly.
        this.retries += 1;
        this.setState("loading");
        this.retryTimer = setTimeout(() => {
          if (this.hls !== hls) return;
          hls.destroy();
          this.hls = null;
          this.attachHls(Hls);
        }, RETRY_MS);
      } else {
        this.fail(`playback failed: ${data.details}`);
      }
    });
    hls.loadSource(this.url);
    hls.attachMedia(this.video);
  }

  attachDash(dashjs) {
    const player = dashjs.MediaPlayer().create();
    this.dash = player;
    // Our MPDs name their own clock (UTCTiming at the CDN); no public time server is asked.
    player.updateSettings({ streaming: { delay: { liveDelayFragmentCount: 3 },
      utcSynchronization: { useManifestDateHeaderTimeSource: false } } });
    player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => this.play());
    player.on(dashjs.MediaPlayer.events.ERROR, (event) => {
      if (this.dash !== player) return;
      const code = event.error && event.error.code;
      if (this.retries < MAX_LOAD_RETRIES) {
        // Usually the manifest is not written yet: start over shortly.
        this.retries += 1;
        this.setState("loading");
        this.retryTimer = setTimeout(() => {
          if (this.dash !== player) return;
          player.reset();
          this.dash = null;
          this.attachDash(dashjs);
        }, RETRY_MS);
      } else {
        this.fail(`playback failed: DASH error ${code}`);
      }
    });
    player.initialize(this.video, this.url, false);
  }

  // Seconds between now and the capture of the frame on screen (EXT-X-PROGRAM-DATE-TIME, or the MPD's clock).
  behindLive() {
    if (this.hls && this.hls.playingDate) return (Date.now() - this.hls.playingDate.getTime()) / 1000;
    if (this.dash && this.dash.isDynamic()) return this.dash.getCurrentLiveLatency();
    return NaN;
  }

  toLiveEdge() {
    if (this.hls && Number.isFinite(this.hls.liveSyncPosition)) this.video.currentTime = this.hls.liveSyncPosition;
    else if (this.dash && this.dash.isDynamic()) this.dash.seekToOriginalLive();
    this.play();
  }

  attachNative(src) {
    const url = this.url;
    this.nativeError = () => {
      if (this.url !== url) return;
      if (this.retries >= MAX_LOAD_RETRIES) {
        this.fail(`playback failed: ${this.video.error?.message || "media error"}`);
        return;
      }
      this.retries += 1;
      this.setState("loading");
      this.retryTimer = setTimeout(() => {
        if (this.url !== url) return;
        this.video.src = src;
        this.play();
      }, RETRY_MS);
    };
    this.video.addEventListener("error", this.nativeError);
    this.video.src = src;
    this.play();
  }

  play() {
    // Browsers allow autoplay only when muted; the controls let the viewer unmute.
    this.video.muted = true;
    this.video.play().catch(() => this.setState("paused"));
  }

  fail(message) {
    this.video.dataset.hlsFatal = message;
    this.setState("error");
    showError(new Error(message));
    this.stop();
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.nativeError) this.video.removeEventListener("error", this.nativeError);
    this.nativeError = null;
    if (this.hls) this.hls.destroy();
    this.hls = null;
    if (this.dash) this.dash.reset();
    this.dash = null;
    this.url = null;
  }
}

export function renderWatch(main, streamId) {
  const title = h("h1", { tabindex: "-1" }, "Loading…");
  const status = h("span", { class: "badge", id: "stream-status" }, "…");
  const viewers = h("span", { id: "viewer-count", "aria-live": "polite" }, "");
  const owner = h("p", { class: "muted" });
  const video = h("video", { id: "player", controls: true, playsinline: true, "data-state": "idle",
    "aria-label": "Live stream player" });
  const notice = h("p", { class: "notice", "aria-live": "polite" });
  let engine = localStorage.getItem(ENGINE_KEY) === "dash" ? "dash" : "hls";
  const behind = h("span", { id: "behind-live", class: "muted" }, "");
  const toLive = h("button", { type: "button", id: "to-live-edge", class: "link",
    onclick: () => player.toLiveEdge() }, "Back to live");
  const toggle = h("button", { type: "button", id: "engine-dash", "aria-pressed": String(engine === "dash"),
    title: "Play the DASH manifest with dash.js instead of HLS with hls.js", onclick: () => {
      engine = engine === "dash" ? "hls" : "dash";
      localStorage.setItem(ENGINE_KEY, engine);
      toggle.setAttribute("aria-pressed", String(engine === "dash"));
      if (stream) apply(stream);
    } }, "DASH");
  const latencyMode = h("select", { id: "latency-mode", "aria-label": "Latency" },
    h("option", { value: "low" }, "Low latency"), h("option", { value: "standard" }, "Standard"));
  latencyMode.value = localStorage.getItem(LATENCY_KEY) === "standard" ? "standard" : "low";
  latencyMode.addEventListener("change", () => {
    localStorage.setItem(LATENCY_KEY, latencyMode.value);
    if (stream) apply(stream);
  });
  const events = h("p", { class: "muted", id: "stream-events", "aria-live": "polite" });
  main.replaceChildren(h("article", { class: "watch" },
    title, owner, h("p", { class: "meta" }, status, " ", viewers), video,
    h("p", { class: "meta" }, latencyMode, " ", toggle, " ", toLive, " ", behind), notice, events));

  const player = new Player(video, (state) => { video.dataset.state = state; });
  player.fallback = () => { latencyMode.value = "standard"; };
  // The viewer session: its token goes with every heartbeat, and is renewed before it expires.
  const viewer = { token: null, renewAt: 0, starting: null };
  let stream = null;
  let waitingSince = null;
  let bufferingMs = 0;
  let firstPlay = true;

  const setViewers = (count) => {
    if (Number.isFinite(count)) viewers.textContent = formatCount(count);
  };
  const apply = (fresh) => {
    stream = fresh;
    title.textContent = stream.title;
    owner.textContent = `by ${stream.owner_username}`;
    status.textContent = stream.status;
    status.dataset.status = stream.status;
    setViewers(stream.viewer_count);
    if (stream.status === "offline") {
      notice.textContent = "This stream is offline. It will start here when it goes live.";
      // A later session plays from the start of its own playlist, not from this player's state.
      player.stop();
      viewer.token = null;
    } else {
      notice.textContent = stream.status === "reconnecting" ? "The broadcaster is reconnecting…" : "";
      // Low latency (the default) plays the LL-HLS master; "standard" the rewind window's master, so the
      // seek bar can go back.
      const plain = stream.dvr_url || stream.playback_url;
      if (engine === "dash" && stream.dash_url) player.start(stream.dash_url, "dash");
      else if (latencyMode.value === "low" && stream.ll_playback_url) player.start(stream.ll_playback_url, "ll", plain);
      else player.start(plain, "hls");
    }
  };
  const reload = () => guarded(async () => apply(await api.stream(streamId)));

  // A session (a viewer token) for the live stream; null when the stream is not live or the API refuses.
  const viewerToken = async () => {
    if (viewer.token && Date.now() < viewer.renewAt) return viewer.token;
    viewer.starting ||= api.playback(streamId, viewerId()).then((started) => {
      viewer.token = started.viewer_token;
      viewer.renewAt = Date.now() + started.expires_in * 1000 * RENEW_AT;
      return viewer.token;
    }).catch(() => null).finally(() => { viewer.starting = null; });
    return viewer.starting;
  };

  const beat = async () => {
    if (!stream || stream.status === "offline" || video.paused) return;
    const token = await viewerToken();
    if (!token) return; // not live yet, or refused: a heartbeat without a token would count for nothing
    const level = player.hls && player.hls.levels[player.hls.currentLevel];
    const body = { stream_id: streamId, viewer_id: viewerId(), viewer_token: token,
      buffering_ms: Math.round(bufferingMs) };
    if (level && level.height) body.rendition = `${level.height}p`;
    bufferingMs = 0;
    try {
      const answer = await api.heartbeat(body);
      if (!answer.counted) viewer.token = null; // expired while the tab slept: the next beat starts a session
    } catch {
      // a lost heartbeat only costs one data point
    }
  };

  video.addEventListener("timeupdate", () => {
    const seconds = player.behindLive();
    behind.textContent = Number.isFinite(seconds) ? `${seconds.toFixed(1)} s behind live` : "";
    if (Number.isFinite(seconds)) video.dataset.behindLive = seconds.toFixed(2);
  });
  video.addEventListener("waiting", () => { waitingSince = performance.now(); });
  video.addEventListener("playing", () => {
    video.dataset.state = "playing";
    if (waitingSince !== null) bufferingMs += performance.now() - waitingSince;
    waitingSince = null;
    if (firstPlay) beat();
    firstPlay = false;
  });
  // Heartbeats, plus a slow re-read of the stream so the page stays right even if the socket is down.
  const timer = setInterval(() => { beat(); reload(); }, HEARTBEAT_MS);

  const announcements = { "stream.live": "went live", "stream.offline": "went offline", "stream.updated": "was updated" };
  const unsubscribe = live.subscribe(streamId, (message) => {
    // `viewers` and `subscribed` carry the count (docs/contracts.md, Stream events); other messages none.
    setViewers(Number(message.viewer_count));
    // Marks when pushes can reach this page (tests and assistive tech can wait on it).
    if (message.type === "subscribed") events.dataset.subscribed = "true";
    if (announcements[message.type]) {
      events.textContent = `The stream ${announcements[message.type]} at ${new Date(message.at).toLocaleTimeString()}.`;
    }
    if (message.missed || announcements[message.type]) reload();
  });

  reload();
  return () => {
    unsubscribe();
    clearInterval(timer);
    player.stop();
    video.removeAttribute("src");
  };
}
