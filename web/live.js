// One WebSocket to the notifications API, shared by every view: subscriptions survive reconnects,
// and each stream's listeners hear its `stream.*`, `viewers` and `subscribed` messages.

import { loadConfig, session } from "./api.js";

const MAX_BACKOFF_MS = 15000;

class LiveChannel {
  constructor() {
    this.socket = null;
    this.listeners = new Map(); // stream_id -> Set of callbacks
    this.lastSeq = new Map(); // stream_id -> last seq seen
    this.backoff = 500;
    this.anonymousOnly = false;
  }

  async open() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    const { websocketUrl } = await loadConfig();
    const token = this.anonymousOnly ? null : session.get()?.access_token;
    const url = new URL(websocketUrl);
    if (token) url.searchParams.set("token", token);
    const socket = new WebSocket(url);
    let opened = false;
    this.socket = socket;
    socket.addEventListener("open", () => {
      opened = true;
      this.backoff = 500;
      for (const streamId of this.listeners.keys()) this.sendSubscribe(streamId);
    });
    socket.addEventListener("message", (event) => this.dispatch(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      // A refused handshake with a token is most likely an expired token: carry on anonymously.
      if (!opened && token) this.anonymousOnly = true;
      if (this.listeners.size) {
        setTimeout(() => this.open(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      }
    });
  }

  // After sign-in or sign-out, reconnect so that follower notifications match the session.
  restart() {
    this.anonymousOnly = false;
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    if (this.listeners.size) this.open();
  }

  sendSubscribe(streamId) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ action: "subscribe", stream_id: streamId }));
    }
  }

  dispatch(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const streamId = message.stream_id;
    if (!streamId) return;
    if (Number.isInteger(message.seq)) {
      const last = this.lastSeq.get(streamId);
      // A gap in seq means a missed event; listeners then re-read the stream instead of trusting deltas.
      message.missed = message.type !== "subscribed" && last !== undefined && message.seq > last + 1;
      if (last === undefined || message.seq > last) this.lastSeq.set(streamId, message.seq);
    }
    for (const listener of this.listeners.get(streamId) || []) listener(message);
  }

  // Returns the function that ends this subscription.
  subscribe(streamId, listener) {
    let set = this.listeners.get(streamId);
    const fresh = !set;
    if (fresh) {
      set = new Set();
      this.listeners.set(streamId, set);
    }
    set.add(listener);
    if (fresh) {
      if (this.socket?.readyState === WebSocket.OPEN) this.sendSubscribe(streamId);
      else this.open();
    }
    return () => {
      set.delete(listener);
      if (set.size) return;
      this.listeners.delete(streamId);
      this.lastSeq.delete(streamId);
      if (this.socket?.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ action: "unsubscribe", stream_id: streamId }));
      }
    };
  }
}

export const live = new LiveChannel();
