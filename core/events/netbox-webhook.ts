/**
 * The body NetBox 4.4–4.7 sends with its default webhook template, and how it normalises into a
 * UNICOP change. Differences across versions: 4.4/4.5 may send `model` where later versions send
 * `object_type`; `username`/`request_id` exist up to 4.6 and `request {id, user, method, path}` from
 * 4.6 on; `snapshots.prechange` is null for creations and `postchange` null for deletions.
 */
import { z } from 'zod';

// Caps on the fields a change copies into its key, its audit events and its id (several copies
// each), far above what NetBox sends: Django's ContentType app_label and model are at most 100
// characters each, a username 150, a request id a UUID (decision 0049).
const objectTypeName = z.string().max(201);
const requestId = z.string().max(100).nullable().optional();
const username = z.string().max(150).nullable().optional();

const objectData = z.looseObject({
  id: z.number().int().positive(),
  last_updated: z.string().nullable().optional(),
});
const snapshot = z.record(z.string(), z.unknown()).nullable();

export const netboxWebhookSchema = z
  .looseObject({
    event: z.enum(['created', 'updated', 'deleted']),
    timestamp: z.string().min(1),
    object_type: objectTypeName.regex(/^[a-z0-9_]+\.[a-z0-9_]+$/, 'expected "app_label.model"').optional(),
    model: objectTypeName.min(1).optional(),
    username,
    request_id: requestId,
    request: z
      .looseObject({
        id: requestId,
        user: username,
        method: z.string().nullable().optional(),
        path: z.string().nullable().optional(),
      })
      .nullable()
      .optional(),
    data: objectData,
    snapshots: z
      .looseObject({ prechange: snapshot.optional(), postchange: snapshot.optional() })
      .nullable()
      .optional(),
  })
  .refine((b) => b.object_type !== undefined || b.model !== undefined, {
    message: 'one of object_type or model is required',
    path: ['object_type'],
  })
  .refine((b) => plausibleTime(Date.parse(b.timestamp)), {
    message: 'not an ISO 8601 timestamp between 1970 and 9999',
    path: ['timestamp'],
  });

/**
 * Between 1970 and 9999: Date.parse takes years up to ±275760, whose ISO form (`+010000-…`) the
 * change event's schema refuses and whose milliseconds do not fit a UUIDv7 — a 500, found by the
 * fuzz suite.
 */
function plausibleTime(ms: number): boolean {
  return ms >= 0 && ms <= Date.UTC(9999, 11, 31, 23, 59, 59, 999);
}

export type NetboxWebhookBody = z.infer<typeof netboxWebhookSchema>;

/** The facts of one delivery that UNICOP keeps, whatever NetBox version sent it. */
export interface NormalisedDelivery {
  event: 'created' | 'updated' | 'deleted';
  objectType: string;
  objectId: number;
  occurredAt: string;
  requestId: string | null;
  actor: string | null;
  lastUpdated: string | null;
  data: Record<string, unknown>;
  prechange: Record<string, unknown> | null;
  postchange: Record<string, unknown> | null;
}

export function normaliseDelivery(body: NetboxWebhookBody): NormalisedDelivery {
  // A snapshot's last_updated is whatever the snapshot holds: only a string is one.
  const snapshotUpdated = body.snapshots?.postchange?.last_updated;
  const lastUpdated =
    (typeof snapshotUpdated === 'string' ? snapshotUpdated : undefined) ?? body.data.last_updated ?? null;
  return {
    event: body.event,
    objectType: body.object_type ?? (body.model as string),
    objectId: body.data.id,
    occurredAt: new Date(body.timestamp).toISOString(),
    requestId: body.request?.id ?? body.request_id ?? null,
    // An empty user names nobody (an audit event's actor may not be empty: a 500 the fuzz suite found).
    actor: body.request?.user || body.username || null,
    lastUpdated,
    data: body.data,
    prechange: body.snapshots?.prechange ?? null,
    postchange: body.snapshots?.postchange ?? null,
  };
}
