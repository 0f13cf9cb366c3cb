// Bearer API keys (API_KEYS, comma-separated), compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError } from "./responses.ts";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

export class ApiKeys {
  readonly #digests: Buffer[];

  /** `variable` and `realm` name the key list in messages (API_KEYS/events, READ_KEYS/analytics) */
  constructor(list: string, readonly variable = "API_KEYS", readonly realm = "events") {
    const keys = list.split(",").map((k) => k.trim()).filter((k) => k !== "");
    if (keys.length === 0) throw new RangeError(`${variable} must list at least one key`);
    this.#digests = keys.map(digest);
  }

  /**
   * The client id (a digest prefix of the key, never the key) for a valid
   * `Authorization: Bearer <key>` header; throws a 401 HttpError otherwise. Every configured key
   * is compared, each in constant time, so the answer time does not depend on which key matched
   * nor on how much of it did.
   */
  authenticate(header: string | null): string {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
    if (!m) {
      throw new HttpError(
        401,
        header
          ? `The Authorization header is not "Bearer <key>": send Authorization: Bearer <one of ${this.variable}>`
          : `No API key: send Authorization: Bearer <one of ${this.variable}>`,
        { "www-authenticate": `Bearer realm="${this.realm}"` },
      );
    }
    const given = digest(m[1]);
    let match = -1;
    this.#digests.forEach((d, i) => {
      if (timingSafeEqual(d, given) && match < 0) match = i;
    });
    if (match < 0) {
      throw new HttpError(
        401,
        `Unknown API key: send one of the keys configured in ${this.variable}`,
        {
          "www-authenticate": `Bearer realm="${this.realm}", error="invalid_token"`,
        },
      );
    }
    return this.#digests[match].toString("hex").slice(0, 32);
  }
}
