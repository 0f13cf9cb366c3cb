// JSON responses and the one error type handlers throw to answer with a status.

/** Seconds a client should wait when the database is unreachable. */
export const DB_RETRY_AFTER = 5;

/** An error that becomes an HTTP response: `{ "error": message, ...extra }`. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return text(status, JSON.stringify(body), headers);
}

/** A JSON body that is already serialised (stored idempotent responses are replayed as is). */
export function text(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

export function errorResponse(error: HttpError): Response {
  return json(error.status, { error: error.message, ...error.extra }, error.headers);
}
