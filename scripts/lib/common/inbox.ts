// The file-drop inbox's layout and naming rule, shared by the file source (ingest/inbox.ts),
// maintenance (which prunes processed/ and rejected/) and the status figures every process
// reports (the inbox backlog).
import { dirname, join } from "node:path";

export interface Dirs {
  inbox: string;
  processed: string;
  rejected: string;
}

/** incoming/processed/rejected as siblings: `--dir X` puts the others beside X. */
export function dirsFor(inbox: string): Dirs {
  const parent = dirname(inbox);
  return { inbox, processed: join(parent, "processed"), rejected: join(parent, "rejected") };
}

export async function ensureDirs(d: Dirs): Promise<void> {
  for (const dir of [d.inbox, d.processed, d.rejected]) await Deno.mkdir(dir, { recursive: true });
}

/** Producers write `name.tmp` or a dotfile and rename when complete: never read those. */
export function isCandidate(name: string): boolean {
  return !name.startsWith(".") && !name.endsWith(".tmp");
}

/** Files ready in the inbox (not *.tmp nor dotfiles); 0 when the directory does not exist. */
export async function inboxBacklog(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) if (!e.isDirectory && isCandidate(e.name)) n++;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  return n;
}
