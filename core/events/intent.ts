/**
 * Building an intent ("root R may have changed, because …") as a message for `unicop.intents`,
 * keyed by the root so a root's intents keep their order. Used by everything that emits intents
 * besides the resolver: the admin API (manual, resume), the sweeper (sweep, resume) and the
 * reconciler (retry). Cause fields a source does not know are null.
 */
import type { EventLogMessage } from '../event-log/port.js';
import { uuidv7 } from '../ids.js';
import { cloudEvent, type EventData, eventTypes } from './catalogue.js';

type Cause = EventData<'intent'>['cause'];

export interface IntentMessage {
  intentId: string;
  message: EventLogMessage;
}

export function intentMessage(
  source: string,
  rootKey: string,
  cause: Partial<Cause> & Pick<Cause, 'kind' | 'actor'>,
  options: { intentId?: string; at?: Date } = {},
): IntentMessage {
  const intentId = options.intentId ?? uuidv7();
  const at = (options.at ?? new Date()).toISOString();
  const event = cloudEvent('intent', {
    id: intentId,
    source,
    subject: rootKey,
    time: at,
    data: {
      intentId,
      rootKey,
      cause: {
        changeId: null,
        requestId: null,
        event: null,
        objectType: null,
        objectId: null,
        at,
        ...cause,
      },
    },
  });
  return {
    intentId,
    message: { topic: eventTypes.intent.topic, key: rootKey, value: JSON.stringify(event) },
  };
}
