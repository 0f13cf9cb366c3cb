// Reads a request body up to a byte limit, counting while it streams (Content-Length is only
// a hint: a chunked or lying client is cut off at the limit too).
import { HttpError } from "./responses.ts";

export function tooLarge(max: number): HttpError {
  return new HttpError(
    413,
    `Request body larger than ${max} bytes (MAX_BODY_BYTES): split the events into smaller batches`,
  );
}

/** Answers 413 at once when Content-Length already says the body is too large. */
export function checkDeclaredLength(req: Request, max: number): void {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > max) {
    throw tooLarge(max);
  }
}

/** The whole body, or a 413 HttpError as soon as more than `max` bytes have arrived. */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new HttpError(
          400,
          "The request body could not be read to its end (connection cut?): nothing was stored; send it again",
          {},
          {},
          { cause: error },
        );
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.length;
      if (size > max) {
        await reader.cancel().catch(() => {});
        throw tooLarge(max);
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
