// Recovery of the prepared slices dead loads left (ingest.prepared_decisions decides), then
// retention: core.apply_retention (SQL decides what is old) plus the files of processed/ and
// rejected/ older than the cutoffs SQL gives (TypeScript only deletes them).
import { join } from "node:path";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import type { Dirs } from "../common/inbox.ts";
import { recoverPrepared } from "../batch/mod.ts";

export interface MaintenanceResult {
  clock: string;
  partitions_created: string[];
  partitions_dropped: string[];
  partitions_detached: string[];
  /** partitions retention would drop, kept because the lake's ledger lacks these days */
  partitions_kept_unexported: Record<string, string[]>;
  rows_deleted: Record<string, number>;
  files_deleted: { processed: number; rejected: number };
  /** prepared slice transactions of dead loads, finished by what their batch decided */
  prepared: { committed: number; rolled_back: number; waiting: number };
}

/** Deletes regular files directly in `dir` modified before `cutoff`; a missing dir is empty. */
async function deleteOlder(dir: string, cutoff: Date): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      const path = join(dir, e.name);
      const info = await Deno.lstat(path).catch(() => undefined);
      if (!info?.isFile || !info.mtime || info.mtime >= cutoff) continue;
      await Deno.remove(path).then(() => n++, () => {});
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return n;
}

/** One maintenance run at `now` (a parameter: tests use a fake clock). */
export async function maintain(
  sql: Sql,
  dirs: Pick<Dirs, "processed" | "rejected">,
  now: Date,
): Promise<MaintenanceResult> {
  // first, what loads in slices left prepared (they hold locks retention may need)
  const prepared = await recoverPrepared(sql);
  const [{ result }] = await sql`select core.apply_retention(${now}) as result`;
  const cutoffs = await sql<{ kind: string; cutoff: Date | null }[]>`
    select kind, cutoff from core.retention_cutoffs(${now})
    where kind in ('processed_files', 'rejected_files')`;
  const cut = Object.fromEntries(cutoffs.map((c) => [c.kind, c.cutoff]));
  const files = { processed: 0, rejected: 0 };
  if (cut.processed_files) files.processed = await deleteOlder(dirs.processed, cut.processed_files);
  if (cut.rejected_files) files.rejected = await deleteOlder(dirs.rejected, cut.rejected_files);
  return { ...result, files_deleted: files, prepared };
}

/** Warns once per partition retention kept because the lake's ledger lacks some of its days. */
export function warnKept(log: Logger, result: MaintenanceResult) {
  for (const [partition, days] of Object.entries(result.partitions_kept_unexported ?? {})) {
    log.warn("partition kept: the lake export is on and these days are not in its ledger", {
      partition,
      days: days.length,
      first: days[0],
      do: "run deno task export, then deno task maintain again",
    });
  }
}
