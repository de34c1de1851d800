/**
 * How an operator command answers: human text by default, one JSON document (or one JSON line per
 * event for a stream) with --json. Errors are classes carrying the exit code: 2 for a usage error
 * (the command line was wrong), 1 for a failure (the system said no, or could not be reached).
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
  readonly exitCode = 1;
  constructor(
    message: string,
    /** What --json prints for the failure (besides the message). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Output {
  readonly json: boolean;
  /** The command's answer: `value` as JSON with --json, else the human text. */
  result(value: unknown, human: string): void;
  /** One line of a stream: a JSON line with --json, else the human text. */
  line(value: unknown, human: string): void;
  /** Progress for a person watching (stderr, only on a terminal, never with --json). */
  progress(text: string): void;
  /** Ends a progress line, if one is showing. */
  progressDone(): void;
}

export function createOutput(
  json: boolean,
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
): Output {
  let showing = false;
  const live = !json && stderr.isTTY === true;
  return {
    json,
    result(value, human) {
      stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
    },
    line(value, human) {
      stdout.write(json ? `${JSON.stringify(value)}\n` : `${human}\n`);
    },
    progress(text) {
      if (!live) return;
      stderr.write(`\r\x1b[2K${text}`);
      showing = true;
    },
    progressDone() {
      if (showing) stderr.write('\r\x1b[2K');
      showing = false;
    },
  };
}

/**
 * A point in time given on the command line: an ISO 8601 time (`2026-12-01T15:00:00Z`) or a
 * duration before `now` (`90s`, `15m`, `2h`, `7d`).
 */
export function parseSince(text: string, now: Date, option: string): Date {
  const ago = /^(\d+)(s|m|h|d)$/.exec(text);
  if (ago) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(ago[1]) * unit);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    const at = new Date(text);
    if (!Number.isNaN(at.getTime())) return at;
  }
  throw new UsageError(
    `${option}: expected a time (2026-12-01T15:00:00Z) or a duration ago (15m, 2h, 7d), got '${text}'`,
  );
}
