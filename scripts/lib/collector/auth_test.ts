import { assert, assertEquals, assertThrows } from "../testing/assert.ts";
import { ApiKeys } from "./auth.ts";
import { HttpError } from "./responses.ts";

Deno.test("ApiKeys accepts each configured key and refuses anything else with 401", () => {
  const keys = new ApiKeys(" alpha , beta,,");
  const a = keys.authenticate("Bearer alpha");
  const b = keys.authenticate("bearer beta");
  assert(/^[0-9a-f]{32}$/.test(a) && a !== b);
  assertEquals(keys.authenticate("Bearer alpha"), a);
  for (const header of [null, "", "Bearer", "Basic YWxwaGE=", "Bearer alph", "Bearer alpha x"]) {
    let caught: unknown;
    try {
      keys.authenticate(header);
    } catch (error) {
      caught = error;
    }
    assert(caught instanceof HttpError, String(header));
    assertEquals(caught.status, 401);
    assert(caught.headers["www-authenticate"].startsWith("Bearer"));
  }
  assertThrows(() => new ApiKeys(" , "), RangeError);
});
