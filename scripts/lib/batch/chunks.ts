// A file's rows staged and checked in several sessions at once (deno task ingest --chunks,
// db/functions/ingest/chunks.sql); the batch itself is finished in its own transaction.
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { copyStream } from "./copy.ts";
import type { Settings } from "./settings.ts";

/**
 * One iterator read by several consumers: each next() waits for the previous one, so the
 * source (the CSV scanner, the file hash) sees one caller at a time and each chunk of output
 * goes to exactly one consumer, whichever asks first (a faster session takes more).
 */
export function shared<T>(source: AsyncIterable<T>): () => AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let tail: Promise<unknown> = Promise.resolve();
  return async function* () {
    while (true) {
      const next = tail.then(() => it.next());
      tail = next.catch(() => {});
      const r = await next;
      if (r.done) return;
      yield r.value;
    }
  };
}

/**
 * Stages a file's rows in `chunks` sessions at once: each opens its chunk, COPYs the rows it
 * takes from the shared scanner output and checks them (ingest.open_chunk, ingest.check_chunk),
 * then commits. Returns the rows each chunk checked. Any failure fails the whole load: the
 * batch's own transaction rolls back and the committed chunks are swept.
 */
export async function stageChunks(
  sql: Sql,
  batchId: number,
  header: string[],
  chunks: number,
  rows: AsyncIterable<Uint8Array>,
  cfg: Settings,
  role: string | undefined,
  on?: { cluster: boolean },
): Promise<number[]> {
  const next = shared(rows);
  // the sessions start reading together, their COPY started (so each takes its share), or
  // after a second when the pool is short of connections for all of them
  let opened = 0;
  let allOpened!: () => void;
  const together = new Promise<void>((r) => allOpened = r);
  const settled = await Promise.allSettled(
    Array.from({ length: chunks }, async (_, i) => {
      const k = i + 1;
      const check = (ctx: postgres.TransactionSql) =>
        ctx`select ingest.check_chunk(${batchId}::bigint, ${k}::int, ${ctx.json(cfg)}::jsonb) as n`;
      const asRole = (fn: (ctx: postgres.TransactionSql) => Promise<postgres.Row[]>) =>
        sql.begin(async (ctx) => {
          if (role) await ctx.unsafe(`set local role ${role}`);
          return await fn(ctx);
        }) as Promise<postgres.Row[]>;
      let onCluster = false;
      const staged = await asRole(async (ctx) => {
        const [{ plan }] = await ctx`
          select ingest.open_chunk(${batchId}::bigint, ${k}::int, ${header}::text[]) as plan`;
        // the gate is passed at the first read, i.e. once this session's COPY has started: a
        // session that started early must not take every piece while the others still wait
        // for the server to answer their COPY (it did, under load: docs/measurements.md)
        async function* gated() {
          if (++opened === chunks) allOpened();
          await Promise.race([together, new Promise((r) => setTimeout(r, 1000))]);
          yield* next();
        }
        await copyStream(
          ctx,
          `copy ${plan.copy_table} (${plan.copy_columns}) from stdin (format csv)`,
          gated(),
        );
        onCluster = plan.on_cluster === true;
        if (on) on.cluster = onCluster;
        // Citus: the check runs later, in other transactions (perhaps other connections of
        // the pool): leave no temp view over the chunk in this session
        if (onCluster) await ctx`select ingest.drop_temp_stage()`;
        return onCluster ? [] : await check(ctx);
      });
      if (!onCluster) return Number(staged[0].n);
      // Citus: the chunk is committed; spread it over the workers, then check it there
      await asRole((ctx) => ctx`select ingest.distribute_chunk(${batchId}::bigint, ${k}::int)`);
      const [{ n }] = await asRole(check);
      return Number(n);
    }),
  );
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<number>).value);
}
