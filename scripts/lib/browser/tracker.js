// tracker.js: shop events from the shopper's browser to POST /v1/collect (docs/tracking.md).
// No dependencies. Served minified by the collector as /v1/tracker-<hash>.js (tracker.min.js,
// built by `deno task tracker`); types in tracker.d.ts.
//
// Nothing is sent and nothing is stored before consent. Every event gets a UUIDv7 event_id when
// it is tracked, so a batch sent twice is a duplicate at the collector, never a second event.
// Events wait in a bounded localStorage queue until the collector answered; failures back off
// (Retry-After first); a hidden or closed page hands what is queued to navigator.sendBeacon.

const PREFIX = "ept_";
let cfg;
let ok = false; // consent
let timer;
let timerAt = Infinity;
let failures = 0;
let retryAt = 0; // no send before this time (backoff, Retry-After)
let sending = false;
const inflight = new Set();

const now = () => Date.now();

function read(name) {
  try {
    return JSON.parse(localStorage.getItem(PREFIX + name));
  } catch {
    return null;
  }
}

function write(name, value) {
  if (!ok) return; // before consent: nothing stored
  try {
    localStorage.setItem(PREFIX + name, JSON.stringify(value));
  } catch { /* storage full or blocked: the event is sent from memory or lost */ }
}

/** A UUIDv7: 48 bits of Unix milliseconds, then random bits (RFC 9562). */
export function uuidv7() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let t = now();
  for (let i = 5; i >= 0; i--, t = Math.floor(t / 256)) b[i] = t % 256;
  b[6] = 0x70 | (b[6] & 15);
  b[8] = 0x80 | (b[8] & 63);
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The queued events, without those older than maxAgeHours, at most maxQueue (newest kept). */
function queue() {
  const oldest = now() - cfg.maxAgeHours * 3600e3;
  const q = (read("queue") || []).filter((e) => Date.parse(e.event_time) >= oldest);
  return q.slice(Math.max(0, q.length - cfg.maxQueue));
}

function forget(batch) {
  const ids = new Set(batch.map((e) => e.event_id));
  write("queue", queue().filter((e) => !ids.has(e.event_id)));
}

function schedule(ms) {
  const at = Math.max(now() + ms, retryAt);
  if (at >= timerAt) return;
  clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(() => {
    timerAt = Infinity;
    flush();
  }, at - now());
}

const url = () =>
  `${cfg.endpoint.replace(/\/$/, "")}/v1/collect?key=${encodeURIComponent(cfg.key)}`;
const body = (batch) => JSON.stringify({ sent_at: new Date().toISOString(), events: batch });

/** Sends the next batch now (the tracker also does so on its own). */
export async function flush() {
  if (!cfg || !ok || sending || !navigator.onLine) return;
  if (now() < retryAt) return schedule(0); // backing off: new events wait too
  const batch = queue().filter((e) => !inflight.has(e.event_id)).slice(0, cfg.maxBatch);
  if (batch.length === 0) return;
  sending = true;
  batch.forEach((e) => inflight.add(e.event_id));
  let wait = 0;
  try {
    const text = body(batch);
    // text/plain: a simple request, no preflight; keepalive: it outlives the page (up to 64 KiB)
    const r = await fetch(url(), {
      method: "POST",
      body: text,
      keepalive: text.length < 60000,
      credentials: "omit",
    });
    if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429)) {
      // delivered, or refused for good (bad key, bad batch): retrying would not help
      if (!r.ok) console.warn(`tracker: batch refused (${r.status}): ${await r.text()}`);
      forget(batch);
      failures = 0;
      retryAt = 0;
    } else {
      wait = backoff(Number(r.headers.get("retry-after")));
    }
  } catch {
    wait = backoff(0); // offline, CORS refusal, connection cut: the events stay queued
  } finally {
    batch.forEach((e) => inflight.delete(e.event_id));
    sending = false;
  }
  if (wait > 0) schedule(wait);
  else if (queue().some((e) => !inflight.has(e.event_id))) schedule(0);
}

/** Exponential backoff with jitter, 1 s to 60 s, never shorter than the server's Retry-After. */
function backoff(retryAfterSeconds) {
  failures++;
  const ms = Math.max(
    Math.min(60e3, 1e3 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2),
    (retryAfterSeconds || 0) * 1e3,
  );
  retryAt = now() + ms;
  return ms;
}

/** The page is hidden or closing: what is queued goes by sendBeacon (no answer is awaited). */
function beacon() {
  if (!cfg || !ok || !navigator.onLine || !navigator.sendBeacon) return;
  const q = queue().filter((e) => !inflight.has(e.event_id));
  for (let i = 0; i < q.length; i += cfg.maxBatch) {
    const batch = q.slice(i, i + cfg.maxBatch);
    if (navigator.sendBeacon(url(), body(batch))) forget(batch);
  }
}

/**
 * Starts the tracker. consent: true when the shopper agreed (or none is needed); otherwise
 * nothing is sent or stored until setConsent(true).
 */
export function init(options) {
  cfg = {
    sessionMinutes: 30,
    flushMs: 1000,
    maxBatch: 20,
    maxQueue: 1000,
    maxAgeHours: 72,
    ...options,
  };
  if (!cfg.endpoint || !/^pk_/.test(cfg.key || "")) {
    throw new TypeError("tracker.init needs { endpoint, key: 'pk_…' } (deno task sites add)");
  }
  ok = cfg.consent === true;
  addEventListener("online", () => {
    retryAt = 0; // the failures were the network's
    flush();
  });
  addEventListener("pagehide", beacon);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") beacon();
  });
  if (ok) page();
}

/** Consent given (events are tracked from now on) or withdrawn (everything stored is removed). */
export function setConsent(granted) {
  ok = granted === true;
  if (ok) return page();
  clearTimeout(timer);
  timerAt = Infinity;
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (k && k.startsWith(PREFIX)) localStorage.removeItem(k);
  }
}

/** The current session (a new one after sessionMinutes without an event), touched now. */
function session() {
  const t = now();
  let s = read("session");
  if (!s || t - s.last > cfg.sessionMinutes * 60e3) {
    s = { id: uuidv7(), landing: location.href, referrer: document.referrer };
  }
  s.last = t;
  write("session", s);
  return s;
}

function visitor() {
  let id = read("visitor");
  if (!id) write("visitor", id = uuidv7());
  return id;
}

/** The shopper signed in: their events carry user_id, and the visitor id keeps the link. */
export function identify(userId) {
  if (ok) write("user", String(userId));
}

/** The shopper signed out: a new visitor and a new session, no user. */
export function reset() {
  for (const k of ["user", "visitor", "session"]) localStorage.removeItem(PREFIX + k);
}

/**
 * A page was shown: keeps the session alive, or starts one remembering this landing page and
 * its referrer (they decide the session's traffic_source). Sends nothing: the contract's events
 * are about products.
 */
export function page() {
  if (cfg && ok) {
    session();
    if (queue().length) schedule(0); // left over from an earlier page
  }
}

function track(type, fields) {
  if (!cfg || !ok) return; // before consent: nothing kept, not even in memory
  const s = session();
  const q = queue();
  q.push({
    event_id: uuidv7(),
    event_time: new Date().toISOString(),
    event_type: type,
    session_id: s.id,
    anonymous_id: visitor(),
    user_id: read("user") || undefined,
    currency: cfg.currency,
    landing_url: s.landing,
    referrer: s.referrer || undefined,
    ...fields,
  });
  write("queue", q.slice(Math.max(0, q.length - cfg.maxQueue)));
  schedule(q.length >= cfg.maxBatch ? 0 : cfg.flushMs);
}

const product = (p, quantity) => ({
  product_id: p.id,
  category: p.category,
  price: p.price,
  quantity,
  currency: p.currency || cfg.currency,
});

export const productView = (p) => track("view", product(p));
export const search = (query) => track("search", { search_query: query });
export const addToCart = (p, quantity = 1) => track("add_to_cart", product(p, quantity));
export const removeFromCart = (p, quantity = 1) => track("remove_from_cart", product(p, quantity));
export const wishlist = (p) => track("wishlist", product(p));

/** One purchase event per order line (the contract's grain). */
export function purchase(order) {
  for (const item of order.items) {
    track("purchase", {
      ...product(item, item.quantity || 1),
      currency: order.currency || item.currency || cfg.currency,
      payment_method: order.paymentMethod,
    });
  }
}
