/**
 * The acting commands, through the bridge's admin API: `unicop reconcile <key>`, `unicop freeze
 * [<key>] --reason`, `unicop resume [<key>] --reason`, `unicop sweep`. Each sends one
 * `Idempotency-Key` (a fresh UUIDv7, or --idempotency-key for a script that may run a command
 * again): the client's own retries and a rerun with the same key act once, and the second answer
 * says it was replayed.
 */
import { sleep } from '../../clock.js';
import { uuidv7 } from '../../ids.js';
import type { AdminClient } from './admin-client.js';
import { CommandFailedError, type Output } from './output.js';

const replayedNote = ' (replayed: this idempotency key was answered before; nothing was done again)';

export async function reconcile(
  admin: AdminClient,
  out: Output,
  rootKey: string,
  reason: string | undefined,
  key = uuidv7(),
): Promise<number> {
  const answer = await admin.call('POST', `/roots/${rootKey}/reconcile`, reason ? { reason } : {}, key);
  const intentId = String(answer.body.intentId);
  out.result(
    { rootKey, intentId, idempotencyKey: key, replayed: answer.replayed },
    `reconcile of ${rootKey} accepted: intent ${intentId} is on unicop.intents${answer.replayed ? replayedNote : ''}`,
  );
  return 0;
}

export async function override(
  admin: AdminClient,
  out: Output,
  frozen: boolean,
  rootKey: string | undefined,
  reason: string,
  key = uuidv7(),
): Promise<number> {
  const answer = await admin.call(
    'POST',
    frozen ? '/freeze' : '/resume',
    rootKey ? { reason, rootKey } : { reason },
    key,
  );
  const b = answer.body;
  const what = rootKey ? `root ${rootKey}` : 'automation (globally)';
  const intent = typeof b.intentId === 'string' ? `; intent ${b.intentId} reconciles what waited` : '';
  out.result(
    { ...b, idempotencyKey: key, replayed: answer.replayed },
    `${what} ${frozen ? 'frozen' : 'resumed'}: ${reason}${intent}${answer.replayed ? replayedNote : ''}`,
  );
  return 0;
}

export async function sweep(
  admin: AdminClient,
  out: Output,
  options: { reason: string | undefined; waitSeconds: number; key?: string },
): Promise<number> {
  const key = options.key ?? uuidv7();
  const answer = await admin.call('POST', '/sweep', options.reason ? { reason: options.reason } : {}, key);
  const requestId = String(answer.body.requestId);
  const base = { requestId, idempotencyKey: key, replayed: answer.replayed };
  if (options.waitSeconds === 0) {
    out.result(
      { ...base, state: 'requested' },
      `sweep requested (${requestId}); a workers' sweeper takes it within seconds${answer.replayed ? replayedNote : ''}`,
    );
    return 0;
  }
  const started = Date.now();
  for (;;) {
    const state = (await admin.call('GET', `/sweeps/${requestId}`)).body;
    if (state.state === 'done') {
      out.progressDone();
      const emitted = Array.isArray(state.emitted) ? state.emitted.map(String) : [];
      out.result(
        { ...base, ...state },
        [
          `sweep ${requestId} done at ${String(state.finishedAt)}: ${String(state.scanned)} roots listed, ${emitted.length} needed work${answer.replayed ? replayedNote : ''}`,
          ...emitted.map((k) => `  intent for ${k}`),
        ].join('\n'),
      );
      return 0;
    }
    const waited = Math.floor((Date.now() - started) / 1000);
    if (waited >= options.waitSeconds) {
      out.progressDone();
      throw new CommandFailedError(
        `sweep ${requestId} was requested, but no sweeper reported within ${options.waitSeconds} s: are the workers running? (it stays queued; \`unicop sweep --wait 0\` does not wait)`,
        { ...base, state: state.state },
      );
    }
    out.progress(`waiting for a workers' sweeper to take sweep ${requestId}… ${waited} s`);
    await sleep(500);
  }
}
