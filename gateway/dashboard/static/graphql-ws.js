// A small client of the graphql-transport-ws protocol (enisdenjo/graphql-ws, PROTOCOL.md):
// one WebSocket for every subscription of the page, opened lazily, re-opened after a drop with
// a growing delay, and every subscription started again on the new socket with the variables
// its owner gives at that moment (so a feed resumes from its latest progress).

const PROTOCOL = "graphql-transport-ws";
// Closes after which trying again cannot help: the server refused the token (4403), or the
// messages themselves (4400); 1000 is our own close.
const FINAL_CLOSES = new Set([1000, 4400, 4403]);
const MAX_RETRY_MS = 15000;

export class LiveClient {
  /**
   * @param {string} url ws:// or wss:// address of the GraphQL endpoint
   * @param {() => object} connectionParams the connection_init payload (read at each connect)
   * @param {(state: string, detail?: string) => void} onState "connecting", "live",
   *   "retrying" (with the reason) or "closed" (with the reason; it will not try again)
   */
  constructor(url, connectionParams, onState = () => {}) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onState = onState;
    this.subscriptions = new Map(); // id -> {payload(), sink}
    this.nextId = 1;
    this.socket = null;
    this.acknowledged = false;
    this.retries = 0;
    this.retryTimer = null;
    this.stopped = false;
  }

  /**
   * Starts a subscription; returns a function that stops it.
   * @param {() => {query: string, variables?: object}} payload the operation, asked again at
   *   every (re)subscribe
   * @param {{next: (data: object) => void, error: (errors: object[]) => void,
   *   complete?: () => void}} sink
   */
  subscribe(payload, sink) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { payload, sink });
    if (this.acknowledged) {
      this.send({ id, type: "subscribe", payload: payload() });
    } else {
      this.connect();
    }
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) {
        this.send({ id, type: "complete" });
      }
    };
  }

  /** Closes the socket for good, with every subscription. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.subscriptions.clear();
    if (this.socket) this.socket.close(1000, "Normal Closure");
    this.socket = null;
  }

  connect() {
    if (this.socket || this.stopped || this.retryTimer) return;
    this.onState("connecting");
    const socket = new WebSocket(this.url, PROTOCOL);
    this.socket = socket;
    this.acknowledged = false;
    socket.onopen = () => {
      this.send({ type: "connection_init", payload: this.connectionParams() });
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.acknowledged = false;
      if (this.stopped) return;
      const reason = event.reason || `connection closed (${event.code})`;
      if (FINAL_CLOSES.has(event.code)) {
        this.stopped = true;
        this.onState("closed", reason);
        for (const { sink } of this.subscriptions.values()) {
          sink.error([{ message: reason, extensions: { code: "CLOSED", closeCode: event.code } }]);
        }
        return;
      }
      // Backing off: 0.5 s, 1 s, 2 s, ... up to 15 s, with some jitter.
      const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** this.retries++) * (0.75 + Math.random() / 2);
      this.onState("retrying", reason);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.subscriptions.size > 0) this.connect();
      }, delay);
    };
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.retries = 0;
        this.onState("live");
        for (const [id, { payload }] of this.subscriptions) {
          this.send({ id, type: "subscribe", payload: payload() });
        }
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next": {
        const subscription = this.subscriptions.get(message.id);
        if (!subscription) break;
        const { data, errors } = message.payload || {};
        if (errors && errors.length) subscription.sink.error(errors);
        else subscription.sink.next(data);
        break;
      }
      case "error": {
        const subscription = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        if (subscription) subscription.sink.error(message.payload || []);
        break;
      }
      case "complete": {
        const subscription = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        if (subscription && subscription.sink.complete) subscription.sink.complete();
        break;
      }
      default:
        break;
    }
  }
}

/**
 * One GraphQL query or mutation over HTTP; resolves to {data, errors}.
 * @param {string} url the GraphQL endpoint
 * @param {string} token the bearer token
 */
export async function request(url, token, query, variables = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    body = { errors: [{ message: `the gateway answered ${response.status}` }] };
  }
  return { data: body.data ?? null, errors: body.errors ?? [] };
}
