/** The event catalogue as JSON Schema documents, one per event type, for consumers outside UNICOP. */
import { z } from 'zod';
import { dataschemaBase, type EventName, envelopeSchema, eventTypes } from './catalogue.js';

export function eventJsonSchemas(): Record<string, object> {
  const out: Record<string, object> = {};
  for (const name of Object.keys(eventTypes) as EventName[]) {
    const { type } = eventTypes[name];
    out[`${type}.json`] = {
      $id: `${dataschemaBase}${type}`,
      title: `UNICOP ${type} (CloudEvents 1.0, structured JSON)`,
      ...z.toJSONSchema(envelopeSchema(name), { target: 'draft-2020-12' }),
    };
  }
  return out;
}
