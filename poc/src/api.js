// GraphQL over HTTP and over the websocket (graphql-transport-ws), with the staff token.
import { createClient } from "graphql-ws";

const TOKEN_KEY = "patriot.poc.token";
const PING_EVERY_MS = 10_000;
const PONG_WITHIN_MS = 5_000;
const MAX_RETRY_WAIT_MS = 3_000;

export class ApiError extends Error {}

// The server refused the staff token (HTTP 401 or 403).
export class AccessDenied extends ApiError {}

export function loadToken() {
  return window.localStorage.getItem(TOKEN_KEY) || "";
}

export function saveToken(token) {
  if (token) window.localStorage.setItem(TOKEN_KEY, token);
  else window.localStorage.removeItem(TOKEN_KEY);
}

function authorization(token) {
  return token ? `Bearer ${token}` : null;
}

export async function query(config, token, document, variables = {}) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  const auth = authorization(token);
  if (auth) headers.authorization = auth;
  const response = await fetch(config.graphqlPath, {
    method: "POST",
    headers,
    body: JSON.stringify({ query: document, variables }),
  });
  if (response.status === 401 || response.status === 403) {
    throw new AccessDenied("Akses ditolak: periksa token petugas.");
  }
  const body = await response.json().catch(() => null);
  if (!body) throw new ApiError(`Server menjawab ${response.status}.`);
  if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

export function websocketUrl(config) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${config.graphqlPath}`;
}

const decoder = new TextDecoder();

// graphql-transport-ws messages are JSON text, but a server may send them in binary
// frames (bytes from a fast JSON encoder); graphql-ws only parses strings, so binary
// frames are decoded to text before it sees them.
class TextFramesWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    this.binaryType = "arraybuffer";
  }

  get onmessage() {
    return super.onmessage;
  }

  set onmessage(handler) {
    super.onmessage = handler
      ? (event) =>
          handler(
            event.data instanceof ArrayBuffer
              ? new MessageEvent("message", { data: decoder.decode(event.data) })
              : event,
          )
      : handler;
  }
}

export function isRefusal(event) {
  return Boolean(event) && (event.code === 4401 || event.code === 4403);
}

/**
 * A websocket client that reconnects for ever. `onState` hears "connecting", "connected"
 * and "closed"; a socket that stops answering pings is cut so that it reconnects.
 */
export function liveClient(config, token, onState) {
  let pongTimer = null;
  let socket = null;
  const client = createClient({
    url: websocketUrl(config),
    webSocketImpl: TextFramesWebSocket,
    lazy: false,
    retryAttempts: Infinity,
    // A refused token will not become valid by retrying: stop and ask to sign in again.
    shouldRetry: (event) => !isRefusal(event),
    retryWait: (retries) =>
      new Promise((resolve) =>
        setTimeout(resolve, Math.min(250 * 2 ** retries, MAX_RETRY_WAIT_MS)),
      ),
    keepAlive: PING_EVERY_MS,
    connectionParams: () => {
      const auth = authorization(token);
      return auth ? { authorization: auth } : {};
    },
    on: {
      connecting: () => onState("connecting"),
      connected: (s) => {
        socket = s;
        onState("connected");
      },
      closed: () => {
        socket = null;
        clearTimeout(pongTimer);
        onState("closed");
      },
      ping: (received) => {
        if (received) return;
        pongTimer = setTimeout(() => {
          if (socket && socket.readyState === WebSocket.OPEN) client.terminate();
        }, PONG_WITHIN_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
    },
  });
  return client;
}
