// COPY FROM STDIN that cannot hang: the one place the batch path streams rows to PostgreSQL.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { TimeoutError, within } from "../common/retry.ts";

export class CopyError extends Error {
  override name = "CopyError";
}

/**
 * COPY FROM STDIN with backpressure. postgres.js 3.4.9 swallows COPY errors (porsager/postgres
 * #1173): the pipeline never settles. So once the source is exhausted, a probe query is queued
 * on the same connection: it completes after a healthy COPY, and fails at once when the server
 * rejected it, which turns the hang into an error.
 */
export async function copyStream(
  tx: Sql | postgres.TransactionSql,
  statement: string,
  source: AsyncIterable<Uint8Array>,
  graceMs = 1000,
  stallMs = 10_000,
): Promise<void> {
  let ended!: () => void;
  const sourceEnded = new Promise<void>((r) => ended = r);
  let settled = false;
  let sourceDone = false;
  let progress = Date.now();
  async function* tracked() {
    for await (const chunk of source) {
      progress = Date.now();
      yield chunk;
    }
    sourceDone = true;
    ended();
  }
  const writable = await tx.unsafe(statement).writable();
  const copying = pipeline(Readable.from(tracked()), writable).finally(() => settled = true);
  // A connection lost mid-COPY leaves the writable waiting forever: with backpressure, no
  // progress for stallMs means the server is gone. Destroying the stream fails the batch.
  // (Once the source is done, the probe below watches instead.)
  const stall = setInterval(() => {
    if (!settled && !sourceDone && Date.now() - progress > stallMs) {
      writable.destroy(
        new CopyError(
          `COPY made no progress for ${
            stallMs / 1000
          } s: the connection to PostgreSQL is lost; the batch will be retried`,
        ),
      );
    }
  }, Math.min(1000, stallMs));
  const watchdog = (async () => {
    await sourceEnded;
    while (!settled) {
      await new Promise((r) => setTimeout(r, graceMs));
      if (settled) return;
      try {
        // a connection the driver lost mid-COPY can leave this probe unanswered for good too
        await within(tx.unsafe("select 1"), 3 * stallMs, "PostgreSQL, probed after the COPY,");
      } catch (error) {
        if (settled) return;
        if (error instanceof TimeoutError) {
          throw new CopyError(
            `${error.message}: the connection is lost; the batch will be retried`,
          );
        }
        throw new CopyError(
          "COPY was rejected by the server (the driver does not say why: see the PostgreSQL log); the batch was rolled back and nothing was loaded",
          { cause: error },
        );
      }
    }
  })();
  try {
    await Promise.race([copying, watchdog]);
    await copying;
  } finally {
    clearInterval(stall);
  }
}
