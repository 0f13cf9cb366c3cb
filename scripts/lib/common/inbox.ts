// The file-drop inbox's naming rule, shared by the file source (ingest/inbox.ts) and the
// status figures every process reports (the inbox backlog).

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
