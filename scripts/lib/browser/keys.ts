// Public write keys (ingest.site_keys, read through ingest.active_site_keys()): which site a key
// writes for and which origins may use it. Reloaded every RELOAD_MS; an unknown key triggers a
// reload at most once a second, so a key added with `deno task sites add` works at once.
import type { Sql } from "../common/db.ts";

export interface SiteKey {
  site_key: string;
  site: string;
  allowed_origins: string[];
  events_per_minute: number;
}

const RELOAD_MS = 10_000;
const UNKNOWN_RELOAD_MS = 1_000;
export const KEY_FORM = /^pk_[0-9a-f]{32}$/;

export class SiteKeys {
  #keys = new Map<string, SiteKey>();
  #loadedAt = -Infinity;
  #loading: Promise<void> | undefined;

  constructor(private readonly sql: Sql) {}

  /** The key's record, or undefined when it is unknown or revoked. */
  async get(key: string): Promise<SiteKey | undefined> {
    if (!KEY_FORM.test(key)) return undefined;
    const age = Date.now() - this.#loadedAt;
    if (age > RELOAD_MS || (!this.#keys.has(key) && age > UNKNOWN_RELOAD_MS)) await this.#reload();
    return this.#keys.get(key);
  }

  #reload(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const rows = await this.sql<SiteKey[]>`
          select site_key, site, allowed_origins, events_per_minute from ingest.active_site_keys()`;
        this.#keys = new Map(rows.map((r) => [r.site_key, r]));
        this.#loadedAt = Date.now();
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}
