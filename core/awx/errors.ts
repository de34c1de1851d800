/**
 * What can go wrong when UNICOP talks to AWX, as named errors that steer the caller: `retriable`
 * says whether trying again later can help. Messages carry the operation and AWX's own answer,
 * never the token or request headers.
 */

export abstract class AwxError extends Error {
  abstract readonly retriable: boolean;
  constructor(
    message: string,
    /** HTTP status AWX answered with, when it answered. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** AWX could not be reached, timed out, or answered 5xx: nothing is known to have happened. */
export class AwxUnavailableError extends AwxError {
  override readonly name = 'AwxUnavailableError';
  readonly retriable = true;
}

/** 401/403: the token is missing, wrong or lacks permission. Retrying will not help. */
export class AwxAuthError extends AwxError {
  override readonly name = 'AwxAuthError';
  readonly retriable = false;
}

/** 404: the template, job or approval does not exist. */
export class AwxNotFoundError extends AwxError {
  override readonly name = 'AwxNotFoundError';
  readonly retriable = false;
}

/** 400/405 or another answer AWX gives to a request it will not carry out. */
export class AwxRequestError extends AwxError {
  override readonly name = 'AwxRequestError';
  readonly retriable = false;
}

/** The approval was already approved, denied, canceled or timed out (AWX answers 400). */
export class AwxApprovalNotPendingError extends AwxError {
  override readonly name = 'AwxApprovalNotPendingError';
  readonly retriable = false;
}

/**
 * AWX created the job but ignored launch fields the run depends on (`extra_vars` when the template
 * does not prompt for variables, `job_type` when it does not prompt for the job type), so the job
 * would run without the `unicop` variables or in the wrong mode. The client has canceled that job.
 * A template configuration error: retrying cannot help.
 */
export class AwxPromptsIgnoredError extends AwxError {
  override readonly name = 'AwxPromptsIgnoredError';
  readonly retriable = false;
  constructor(
    readonly templateId: number,
    readonly jobId: number,
    readonly fields: string[],
  ) {
    super(
      `AWX template ${templateId} ignored ${fields.join(', ')} at launch (enable prompting on launch); ` +
        `job ${jobId} was canceled`,
    );
  }
}

/**
 * The launch request was sent but its answer was lost (timeout, connection reset, 5xx), and no job
 * carrying this run id has shown up in AWX yet. Retrying is safe only through the client's launch,
 * which looks the run id up again before it launches anything.
 */
export class AwxLaunchUnconfirmedError extends AwxError {
  override readonly name = 'AwxLaunchUnconfirmedError';
  readonly retriable = true;
  constructor(
    readonly templateId: number,
    readonly runId: string,
    options?: { cause?: unknown },
  ) {
    super(
      `launch of AWX template ${templateId} for run ${runId}: answer lost and no job found yet`,
      undefined,
      options,
    );
  }
}

/** AWX answered with something the client cannot read (not the documented shape). */
export class AwxProtocolError extends AwxError {
  override readonly name = 'AwxProtocolError';
  readonly retriable = false;
}
