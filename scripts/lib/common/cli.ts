// Command-line flags, the same way in every script: every flag declared, --help, and a bad
// flag as one line on stderr with exit code 2.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

const helpFlag = { help: { type: "boolean", short: "h", default: false } } as const;

/** The parsed value of each declared flag (undefined when absent and without a default). */
export type FlagValues<O extends ParseArgsOptionsConfig> = {
  [K in keyof O]: (O[K]["type"] extends "boolean" ? boolean : string) extends infer V
    ? O[K]["multiple"] extends true ? V[] : V
    :
      | never
      | undefined;
};

/** Parses `args` strictly; prints `help` and exits 0 on --help, exits 2 on a bad flag. */
export function parseFlags<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  help: string,
): FlagValues<O> {
  const config = {
    args,
    options: { ...options, ...helpFlag },
    strict: true,
    allowPositionals: false,
  } as const;
  let parsed: { values: Record<string, unknown> };
  try {
    parsed = parseArgs(config);
  } catch (error) {
    console.error(`error: ${(error as Error).message} (see --help)`);
    Deno.exit(2);
  }
  if (parsed.values.help) {
    console.log(help);
    Deno.exit(0);
  }
  return parsed.values as FlagValues<O>;
}
