// Minimal assertions (JSR, home of @std/assert, is not reachable from here).
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

export function assert(value: unknown, msg?: string): asserts value {
  ok(value, msg);
}

// deno-lint-ignore no-explicit-any
type Ctor = new (...args: any[]) => Error;

export function assertThrows(fn: () => unknown, cls?: Ctor, includes?: string): void {
  throws(fn, (e: unknown) => {
    if (cls && !(e instanceof cls)) return false;
    if (includes && !(e as Error).message.includes(includes)) return false;
    return true;
  });
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: Ctor,
  includes?: string,
): Promise<Error> {
  let caught: Error | undefined;
  await rejects(fn, (e: unknown) => {
    caught = e as Error;
    if (cls && !(e instanceof cls)) return false;
    if (includes && !(e as Error).message.includes(includes)) return false;
    return true;
  });
  return caught!;
}
