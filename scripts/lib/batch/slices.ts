// The slice sessions of a file loaded in chunks, and the two-phase commit that makes them one
// with the batch's own transaction (db/functions/ingest/slices.sql says what each step does;
// SQL decides, this file only opens sessions, prepares, commits and rolls back).
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";

/** What a slice session reports (ingest.process_slice). */
export interface SliceResult {
  slice: number;
  valid: number;
  accepted: number;
  late: number;
  duplicates: number;
  conflicts: number;
  invalid: number;
  rejected: number[];
  reasons: Record<string, number>;
  invalid_rows: { line_no: number; reasons: string[] }[];
}

/**
 * Test-only crash point of the slice steps (PIPELINE_CRASH_AT=<stage>): the process dies on the
 * spot, as kill -9 would.
 */
function crashPoint(stage: string) {
  if (Deno.env.get("PIPELINE_CRASH_AT") === stage) {
    console.error(`crash point "${stage}" reached: exiting abruptly`);
    Deno.exit(137);
  }
}

/**
 * Steps 1 and 2: the batch's partitions (committed on their own), then `slices` sessions at
 * once, each doing its slice's whole work and ending with PREPARE TRANSACTION. Returns the
 * slices' results and their gids. On any failure, every slice that prepared is rolled back
 * before the error is thrown (the batch's transaction then rolls back too).
 */
export async function runSlices(
  sql: Sql,
  batchId: number,
  chunks: number,
  slices: number,
  name: string,
  role: string | undefined,
  alongside?: () => Promise<unknown>,
): Promise<{ results: SliceResult[]; gids: string[] }> {
  await sql.begin(async (tx) => {
    if (role) await tx.unsafe(`set local role ${role}`);
    await tx`select ingest.prepare_slices(${batchId}::bigint, ${chunks}::int)`;
  });
  const gids: string[] = [];
  const work: Promise<unknown>[] = Array.from({ length: slices }, async (_, s) => {
    let out: SliceResult | undefined;
    let gid = "";
    await sql.begin(async (tx) => {
      if (role) await tx.unsafe(`set local role ${role}`);
      const [r] = await tx`
          select ingest.process_slice(${batchId}::bigint, ${chunks}::int, ${s}::int,
            ${slices}::int, ${name}) as result,
            ingest.slice_gid(${batchId}::bigint, ${s}::int) as gid`;
      out = r.result as SliceResult;
      gid = r.gid;
      // postgres.js ends this transaction with PREPARE TRANSACTION instead of COMMIT
      tx.prepare(gid);
    });
    gids.push(gid);
    return out!;
  });
  if (alongside) work.push(alongside());
  const settled = await Promise.allSettled(work);
  crashPoint("after-slices");
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) {
    await rollbackPrepared(sql, gids, role);
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    results: settled.slice(0, slices).map((r) => (r as PromiseFulfilledResult<SliceResult>).value),
    gids: gids.sort(),
  };
}

/**
 * Steps 2 and 3 at once: the slices (runSlices) while the batch's own transaction `tx` rolls
 * the batch's events up ahead of them, inside a savepoint (ingest.roll_up_ahead: the rollups
 * are the largest serial part of a file in slices, and run here on the cores the slices leave).
 * The savepoint is kept when the slices rejected exactly the lines predicted, and rolled back
 * otherwise (a load beside this one stored one of the batch's ids in between):
 * ingest.finish_slices then rolls up after the slices, as it does without this.
 */
export async function runSlicesRollingUp(
  tx: postgres.TransactionSql,
  sql: Sql,
  batchId: number,
  chunks: number,
  slices: number,
  name: string,
  role: string | undefined,
): Promise<{ results: SliceResult[]; gids: string[]; rolledUp: "ahead" | "after" }> {
  await tx`savepoint roll_up_ahead`;
  const out = await runSlices(
    sql,
    batchId,
    chunks,
    slices,
    name,
    role,
    () => tx`select ingest.roll_up_ahead(${batchId}::bigint, ${chunks}::int)`,
  );
  const [{ held }] = await tx`
    select ingest.rolled_up_as_predicted(${batchId}::bigint,
      ${tx.json(out.results as unknown as postgres.JSONValue)}::jsonb) as held`
    .catch(async (error) => {
      await rollbackPrepared(sql, out.gids, role);
      throw error;
    });
  await (held ? tx`release savepoint roll_up_ahead` : tx`rollback to savepoint roll_up_ahead`);
  return { ...out, rolledUp: held ? "ahead" : "after" };
}

/**
 * COMMIT or ROLLBACK PREPARED (outside any transaction). Only the role that prepared it (or a
 * superuser) may finish a prepared transaction: with `role` (the ingest role the slice ran as,
 * or the owner recovery found) the session takes that role for it. A transaction already
 * finished by another process (undefined_object) is no error.
 */
async function endPrepared(
  sql: Sql,
  action: "commit" | "rollback",
  gid: string,
  role?: string,
) {
  const c = await sql.reserve();
  try {
    if (role) await c.unsafe(`set role "${role.replaceAll('"', '""')}"`);
    await c.unsafe(`${action} prepared '${gid.replaceAll("'", "''")}'`);
  } catch (error) {
    if ((error as postgres.PostgresError).code !== "42704") throw error;
  } finally {
    if (role) await c.unsafe("reset role").catch(() => {});
    c.release();
  }
}

/** Rolls back prepared slices (best effort: recovery rolls back whatever is left). */
export async function rollbackPrepared(sql: Sql, gids: string[], role?: string) {
  for (const gid of gids) await endPrepared(sql, "rollback", gid, role).catch(() => {});
}

/**
 * Step 4, after the batch's transaction committed the decision: commits every prepared slice
 * (`role`: the role the slices ran as).
 */
export async function commitPrepared(sql: Sql, gids: string[], role?: string) {
  for (const [i, gid] of gids.entries()) {
    if (i === 1) crashPoint("between-prepared-commits");
    await endPrepared(sql, "commit", gid, role);
  }
}

/**
 * Recovery (ingester start, before each load in slices, `deno task maintain`): commits the
 * prepared slices whose batch decided to commit, rolls back those whose batch ended without
 * deciding, leaves those whose batch is still open (ingest.prepared_decisions decides).
 */
export async function recoverPrepared(
  sql: Sql,
): Promise<{ committed: number; rolled_back: number; waiting: number }> {
  const out = { committed: 0, rolled_back: 0, waiting: 0 };
  const rows = await sql<{ gid: string; action: string; owner: string; me: string }[]>`
    select gid, action, owner, current_user as me from ingest.prepared_decisions()`;
  for (const { gid, action, owner, me } of rows) {
    if (action === "wait") {
      out.waiting++;
      continue;
    }
    await endPrepared(
      sql,
      action === "commit" ? "commit" : "rollback",
      gid,
      owner === me ? undefined : owner,
    );
    if (action === "commit") out.committed++;
    else out.rolled_back++;
  }
  return out;
}
