// System tools some tests need. Missing means the test fails loudly (CI installs them in
// .ci/run); nothing passes silently for want of a tool.

/** promtool (Debian package `prometheus`), or an error saying how to install it. */
export function promtoolPath(): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/promtool`).isFile) return `${dir}/promtool`;
    } catch { /* not here */ }
  }
  throw new Error(
    "promtool is not installed: apt-get install prometheus (Debian/Ubuntu) or put promtool on PATH; .ci/run installs it",
  );
}
