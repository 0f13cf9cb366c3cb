// tracker.min.js from tracker.js: esbuild minifies it (deno task tracker writes the file; a test
// checks the committed file is this build of the source). Sizes: docs/tracking.md#size.
const here = new URL(".", import.meta.url).pathname;
export const SOURCE = `${here}tracker.js`;
export const MINIFIED = `${here}tracker.min.js`;
const ESBUILD = "npm:esbuild@0.25.0";
const BANNER =
  "// tracker.js, minified by `deno task tracker` from scripts/lib/browser/tracker.js (docs/tracking.md)";

/** The minified tracker, as esbuild writes it. */
export async function buildTracker(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ESBUILD,
      SOURCE,
      "--minify",
      "--format=esm",
      "--target=es2020",
      `--banner:js=${BANNER}`,
      "--log-level=error",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`esbuild failed on ${SOURCE}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

if (import.meta.main) {
  const min = await buildTracker();
  await Deno.writeTextFile(MINIFIED, min);
  const gz = await new Response(
    new Blob([min]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  console.log(`${MINIFIED}: ${min.length} bytes, ${gz.byteLength} gzipped`);
}
