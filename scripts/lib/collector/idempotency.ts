// Idempotency-Key records (ingest.http_idempotency), written in the batch's own transaction.
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { HttpError } from "./responses.ts";

/** How long a key is remembered; older records are purged and the key may be used again. */
export const TTL_HOURS = 24;
const TTL = `${TTL_HOURS} hours`;

export interface StoredResponse {
  status: number;
  body: string;
  batch_id: number | null;
  request_sha256: string;
}

/** The Idempotency-Key header, checked: 1-255 visible ASCII characters, or null when absent. */
export function idempotencyKey(req: Request): string | null {
  const key = req.headers.get("idempotency-key");
  if (key === null) return null;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new HttpError(
      400,
      "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
    );
  }
  return key;
}

/** What makes two requests "the same": the body format and its bytes. */
export function requestFingerprint(mediaType: string, body: Uint8Array): string {
  return createHash("sha256").update(mediaType).update("\n").update(body).digest("hex");
}

/**
 * Claims `key` in this transaction: null when it is new; otherwise the first response. A
 * concurrent request with the same key waits here until the first transaction ends.
 */
export async function claim(
  tx: postgres.TransactionSql,
  client: string,
  key: string,
  fingerprint: string,
): Promise<StoredResponse | null> {
  const [{ prior }] = await tx`
    select ingest.http_claim(${client}, ${key}, ${fingerprint}, ${TTL}::interval) as prior`;
  return prior as StoredResponse | null;
}

export async function store(
  tx: postgres.TransactionSql,
  client: string,
  key: string,
  status: number,
  body: string,
  batchId: number | null,
): Promise<void> {
  await tx`select ingest.http_store(${client}, ${key}, ${status}::int, ${body}, ${batchId}::bigint)`;
}

/** Deletes records older than the TTL; returns how many. */
export async function purge(sql: postgres.Sql): Promise<number> {
  const [{ n }] = await sql`select ingest.http_purge(${TTL}::interval) as n`;
  return Number(n);
}
