/**
 * A request the server refuses, with the status, a message that names the
 * problem and its fix, and the request field at fault (the form shows it there).
 * `retryAfter` (seconds) becomes a Retry-After header.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}
