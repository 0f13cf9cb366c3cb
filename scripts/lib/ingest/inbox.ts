// The file-drop inbox: which files are ready, and where they go after their transaction.
import { basename, join } from "node:path";
import { isCandidate } from "../common/inbox.ts";

export interface Entry {
  name: string;
  path: string;
  mtime: number;
  size: number;
  /** a symlink or anything but a regular file: refused, never read */
  refused?: string;
}

/** Ready files, oldest first (then by name). */
export async function listReady(inbox: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of Deno.readDir(inbox)) {
    if (!isCandidate(e.name)) continue;
    const path = join(inbox, e.name);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue; // taken by another ingester
      throw error;
    }
    const entry: Entry = {
      name: e.name,
      path,
      mtime: info.mtime?.getTime() ?? 0,
      size: info.size,
    };
    if (info.isSymlink) entry.refused = "a symbolic link (the inbox takes regular files only)";
    else if (!info.isFile) {
      if (info.isDirectory) continue;
      entry.refused = "not a regular file";
    }
    out.push(entry);
  }
  return out.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Moves a file into `dir` under its own name, adding `.1`, `.2`... rather than overwrite. */
export async function moveInto(path: string, dir: string): Promise<string> {
  const name = basename(path);
  for (let n = 0;; n++) {
    const target = join(dir, n === 0 ? name : `${name}.${n}`);
    try {
      await Deno.lstat(target);
      continue;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    try {
      await Deno.rename(path, target);
      return target;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return ""; // moved by another ingester
      throw error;
    }
  }
}
