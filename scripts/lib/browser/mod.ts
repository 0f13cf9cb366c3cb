// The browser source: POST /v1/collect for tracker.js, and tracker.js itself. The collector's
// app mounts these handlers; this folder imports nothing of the other sources.
import { createHash } from "node:crypto";
import { type CollectDeps, createCollect } from "./collect.ts";
import { MINIFIED } from "./build.ts";

export { type BatchReply, type BrowserLimits, COLUMNS, correctedTime } from "./collect.ts";
export type { CollectDeps } from "./collect.ts";

export interface Tracker {
  /** /v1/tracker-<first 12 hex digits of its SHA-256>.js */
  path: string;
  body: Uint8Array;
}

/** tracker.min.js and its versioned path (the content decides the version). */
export function loadTracker(): Tracker {
  const body = Deno.readFileSync(MINIFIED);
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { path: `/v1/tracker-${hash}.js`, body };
}

export function createBrowserSource(deps: CollectDeps) {
  const collect = createCollect(deps);
  const tracker = loadTracker();
  const js = {
    "content-type": "text/javascript; charset=utf-8",
    "x-content-type-options": "nosniff",
    // a module script from another origin is fetched with CORS; the file is public
    "access-control-allow-origin": "*",
  };
  return {
    post: collect.post,
    preflight: collect.preflight,
    tracker,
    /** GET /v1/tracker-<hash>.js: the content never changes under this name */
    versioned: () =>
      new Response(tracker.body.slice(), {
        headers: { ...js, "cache-control": "public, max-age=31536000, immutable" },
      }),
    /** GET /v1/tracker.js: the current version, by a short-lived redirect */
    latest: () =>
      new Response(null, {
        status: 302,
        headers: { ...js, location: tracker.path, "cache-control": "public, max-age=300" },
      }),
  };
}
