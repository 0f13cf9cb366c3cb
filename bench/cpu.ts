// CPU accounting from /proc (Linux; zeros elsewhere), shared by the benches that report CPU a
// row or an event: on a machine whose cores the load generator, the loader and the server share,
// what each process costs tells where the time goes, and wall time does not.

/**
 * CPU ms (user + system, and what its ended children used) of one process, from
 * /proc/<pid>/stat in clock ticks (100 a second). 0 when it is gone or not on Linux.
 */
export function cpuOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU ms of one PostgreSQL cluster: its postmaster (whose ended children, the backends that
 * exited, are in its cutime) and its live children. Other clusters on the machine are not
 * counted. 0 when the postmaster is not local (an external database).
 */
export function postgresCpu(dataDir: string): number {
  let postmaster: number;
  try {
    postmaster = Number(Deno.readTextFileSync(`${dataDir}/postmaster.pid`).split("\n")[0]);
  } catch {
    return 0;
  }
  let ms = cpuOf(postmaster);
  if (ms === 0) return 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) ms += cpuOf(Number(e.name));
    } catch { /* ended meanwhile */ }
  }
  return ms;
}

/** This clone's PostgreSQL data directory (make up's .data/postgres). */
export const localDataDir = new URL("../.data/postgres", import.meta.url).pathname;
