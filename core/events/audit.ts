/**
 * Audit events (`unicop.audit`, keyed by the subject — a root key for everything about a root, so
 * a root's timeline is one partition, in order). One builder for every component.
 */
import type { EventLogMessage } from '../event-log/port.js';
import { uuidv7 } from '../ids.js';
import { cloudEvent, type EventData, eventTypes } from './catalogue.js';

export function auditMessage(source: string, data: EventData<'audit'>, key: string): EventLogMessage {
  const event = cloudEvent('audit', {
    id: uuidv7(),
    source,
    subject: `${data.subjectType}/${data.subjectId}`,
    data,
  });
  return { topic: eventTypes.audit.topic, key, value: JSON.stringify(event) };
}
