/**
 * Errors that map to an HTTP answer. Each carries the status, a machine-readable reason, and — for
 * validation errors — the field path, so a caller always learns what was wrong and where.
 */
export interface FieldIssue {
  field: string;
  message: string;
}

export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly details: { issues?: FieldIssue[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
  }
}

export class UnauthorizedError extends HttpError {
  override readonly name = 'UnauthorizedError';
  constructor(reason: string, message: string) {
    super(401, reason, message, { headers: { 'WWW-Authenticate': 'Bearer' } });
  }
}

export class PayloadTooLargeError extends HttpError {
  override readonly name = 'PayloadTooLargeError';
  constructor(limit: number) {
    super(413, 'body_too_large', `request body exceeds ${limit} bytes`);
  }
}

export class MalformedBodyError extends HttpError {
  override readonly name = 'MalformedBodyError';
  constructor(message: string, reason: 'malformed_json' | 'json_too_deep' = 'malformed_json') {
    super(400, reason, message);
  }
}

export class ValidationError extends HttpError {
  override readonly name = 'ValidationError';
  constructor(issues: FieldIssue[]) {
    super(422, 'invalid_body', `invalid body: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, {
      issues,
    });
  }
}

export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError';
  constructor(what: string) {
    super(404, 'not_found', `${what} not found`);
  }
}

export class ServiceUnavailableError extends HttpError {
  override readonly name = 'ServiceUnavailableError';
  constructor(reason: string, message: string, retryAfterSeconds: number, cause?: unknown) {
    super(503, reason, message, { headers: { 'Retry-After': String(retryAfterSeconds) }, cause });
  }
}
