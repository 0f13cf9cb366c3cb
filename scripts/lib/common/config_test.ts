import { assertEquals, assertThrows } from "../testing/assert.ts";
import { ConfigError, loadConfig, parseDotenv } from "./config.ts";

Deno.test("loadConfig applies the defaults of the contract", () => {
  const cfg = loadConfig({});
  assertEquals(cfg.DATABASE_URL, "postgres://postgres:postgres@127.0.0.1:5433/ecommerce");
  assertEquals([cfg.MAX_PRICE, cfg.FUTURE_TOLERANCE_SECONDS, cfg.TOO_OLD_DAYS], [10000, 300, 400]);
  assertEquals([cfg.LATE_AFTER_SECONDS, cfg.MIN_VALIDITY_RATE], [600, 0.95]);
});

Deno.test("loadConfig builds the default DATABASE_URL from PGPORT", () => {
  assertEquals(
    loadConfig({ PGPORT: "5434" }).DATABASE_URL,
    "postgres://postgres:postgres@127.0.0.1:5434/ecommerce",
  );
});

Deno.test("loadConfig rejects bad values with one line naming the variable", () => {
  const cases: [Record<string, string>, string][] = [
    [{ MAX_PRICE: "lots" }, "MAX_PRICE must be a number"],
    [{ MAX_PRICE: "-5" }, "MAX_PRICE must be greater than 0"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL must be one of debug, info, warn, error"],
    [{ MIN_VALIDITY_RATE: "2" }, "MIN_VALIDITY_RATE must be between 0 and 1"],
    [{ TOO_OLD_DAYS: "1.5" }, "TOO_OLD_DAYS must be a whole number"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL must look like postgres://"],
  ];
  for (const [env, message] of cases) {
    assertThrows(() => loadConfig(env), ConfigError, message);
    try {
      loadConfig(env);
    } catch (error) {
      const text = (error as Error).message;
      assertEquals(text.includes("\n"), false);
      assertEquals(text.includes(`(got "${Object.values(env)[0]}")`), true);
    }
  }
});

Deno.test("parseDotenv reads KEY=value lines, comments and quotes", () => {
  assertEquals(
    parseDotenv("# c\nA=1\nB = 'two words'\nC=\"x\" \nD=5 # note\n\nbad line\n"),
    { A: "1", B: "two words", C: "x", D: "5" },
  );
});
