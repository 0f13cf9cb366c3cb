// A route of the collector: method, path pattern, the label metrics and logs name it by, and
// its handler. createApp (app.ts) mounts the routes of ingest_routes.ts, ops_routes.ts and
// read_routes.ts and answers a request with the one that matches.

export type Handler = (
  req: Request,
  url: URL,
  params: string[],
  info?: Deno.ServeHandlerInfo,
) => Promise<Response> | Response;
export interface Route {
  method: string;
  pattern: RegExp;
  /** the route label in metrics and logs */
  label: string;
  handler: Handler;
}
