/**
 * The body NetBox 4.4–4.7 sends with its default webhook template, and how it normalises into a
 * UNICOP change. Differences across versions: 4.4/4.5 may send `model` where later versions send
 * `object_type`; `username`/`request_id` exist up to 4.6 and `request {id, user, method, path}` from
 * 4.6 on; `snapshots.prechange` is null for creations and `postchange` null for deletions.
 */
import { z } from 'zod';

const objectData = z.looseObject({ id: z.number().int().positive() });
const snapshot = z.record(z.string(), z.unknown()).nullable();

export const netboxWebhookSchema = z
  .looseObject({
    event: z.enum(['created', 'updated', 'deleted']),
    timestamp: z.string().min(1),
    object_type: z
      .string()
      .regex(/^[a-z0-9_]+\.[a-z0-9_]+$/, 'expected "app_label.model"')
      .optional(),
    model: z.string().min(1).optional(),
    username: z.string().nullable().optional(),
    request_id: z.string().nullable().optional(),
    request: z
      .looseObject({
        id: z.string().nullable().optional(),
        user: z.string().nullable().optional(),
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
  .refine((b) => !Number.isNaN(Date.parse(b.timestamp)), {
    message: 'not an ISO 8601 timestamp',
    path: ['timestamp'],
  });

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
  const lastUpdated =
    (body.snapshots?.postchange?.last_updated as string | undefined) ??
    (body.data.last_updated as string | undefined) ??
    null;
  return {
    event: body.event,
    objectType: body.object_type ?? (body.model as string),
    objectId: body.data.id,
    occurredAt: new Date(body.timestamp).toISOString(),
    requestId: body.request?.id ?? body.request_id ?? null,
    actor: body.request?.user ?? body.username ?? null,
    lastUpdated,
    data: body.data,
    prechange: body.snapshots?.prechange ?? null,
    postchange: body.snapshots?.postchange ?? null,
  };
}
