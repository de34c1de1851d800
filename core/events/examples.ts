/**
 * One example per event type, built through the catalogue (so they are valid by construction).
 * docs/events.md is generated from these by `npm run events:export`.
 */
import { type CloudEvent, cloudEvent, type EventName } from './catalogue.js';

const t0 = Date.parse('2026-11-22T10:00:00.000Z');
const at = (ms: number) => new Date(t0 + ms).toISOString();
const changeId = '019aab2f-7c00-7a3e-9d41-3c2b9b0f5e11';
const intentId = '019aab2f-7c02-7b10-8e55-0a6f2c4d9e01';

export const eventExamples: { [N in EventName]: { about: string; event: CloudEvent<N> } } = {
  change: {
    about: 'A NetBox object changed; written by the bridge before it answers 202 (key: object type + id).',
    event: cloudEvent('change', {
      id: changeId,
      source: 'unicop/bridge',
      subject: 'ipam.ipaddress:7',
      time: at(0),
      data: {
        changeId,
        event: 'updated',
        objectType: 'ipam.ipaddress',
        objectId: 7,
        occurredAt: at(0),
        requestId: '5d3c6a7e-1f0b-4c1e-9a53-2f7f4d1c0b9a',
        actor: 'alice',
        lastUpdated: at(0),
        data: { id: 7, address: '10.0.0.7/24', dns_name: 'web-1.example.net' },
        prechange: { address: '10.0.0.7/24', dns_name: 'web-1' },
        postchange: { address: '10.0.0.7/24', dns_name: 'web-1.example.net' },
      },
    }),
  },
  intent: {
    about:
      'Root R may have changed, and why; written by the resolver (key: root key). The id derives from change id + root key.',
    event: cloudEvent('intent', {
      id: intentId,
      source: 'unicop/resolver',
      subject: 'prefix/42',
      time: at(40),
      data: {
        intentId,
        rootKey: 'prefix/42',
        cause: {
          kind: 'change',
          changeId,
          requestId: '5d3c6a7e-1f0b-4c1e-9a53-2f7f4d1c0b9a',
          event: 'updated',
          objectType: 'ipam.ipaddress',
          objectId: 7,
          actor: 'alice',
          at: at(0),
        },
      },
    }),
  },
  outcome: {
    about: "A run's one terminal state; written by the reconciler after NetBox has it (key: root key).",
    event: cloudEvent('outcome', {
      id: '019aab2f-9a10-7c44-8b21-6d0e3f2a1b77',
      source: 'unicop/reconciler',
      subject: 'prefix/42',
      time: at(9000),
      data: {
        runId: '019aab2f-7d00-7e2a-a0c3-5b1d2e3f4a5b',
        rootKey: 'prefix/42',
        state: 'succeeded',
        failureClass: null,
        snapshotHash: 'b5f3c1d2e4a6978877665544332211ffeeddccbbaa99887766554433221100aa',
        fencingToken: 17,
        intentId,
        awxJobId: 311,
        awxJobUrl: 'https://awx.example.net/#/jobs/playbook/311',
        summary: 'zone 42.example.net rendered: 12 A, 12 PTR (changed=2)',
        startedAt: at(300),
        finishedAt: at(9000),
      },
    }),
  },
  audit: {
    about: 'A state transition or a refusal, with actor and correlation ids (key: root key or object key).',
    event: cloudEvent('audit', {
      id: '019aab2f-7c01-7f00-9a00-112233445566',
      source: 'unicop/bridge',
      subject: 'webhook/019aab2f-7bff-7000-8000-000000000001',
      time: at(1),
      data: {
        action: 'webhook.rejected',
        actor: 'netbox',
        subjectType: 'webhook',
        subjectId: '019aab2f-7bff-7000-8000-000000000001',
        outcome: 'rejected',
        reason: 'invalid_signature',
        correlation: { bridgeRequestId: '019aab2f-7bff-7000-8000-000000000001' },
        metadata: { status: 401 },
      },
    }),
  },
  awxJobStatus: {
    about:
      'AWX notified a job status change; only a signal for the workers, who own run state (key: job kind + id).',
    event: cloudEvent('awxJobStatus', {
      id: '019aab2f-9a00-7111-8222-333344445555',
      source: 'unicop/bridge',
      subject: 'awx/job/311',
      time: at(8990),
      data: {
        awxJobId: 311,
        kind: 'job',
        status: 'successful',
        name: 'unicop-prefix-reconcile',
        url: 'https://awx.example.net/#/jobs/playbook/311',
        started: at(400),
        finished: at(8900),
        receivedAt: at(8990),
      },
    }),
  },
  awxApproval: {
    about:
      "AWX notified that a workflow's approval node needs review (`pending`) or was approved, denied or timed out; a signal like awx-job-status (key: `workflow_job/<id>`, the workflow job's own).",
    event: cloudEvent('awxApproval', {
      id: '019aab2f-8a00-7111-8222-333344445566',
      source: 'unicop/bridge',
      subject: 'awx/workflow_job/312/approval',
      time: at(1200),
      data: {
        workflowJobId: 312,
        approvalName: 'Approve site change',
        status: 'pending',
        workflowUrl: 'https://awx.example.net/#/jobs/workflow/312',
        message:
          'The approval node "Approve site change" needs review. This node can be viewed at: https://awx.example.net/#/jobs/workflow/312',
        receivedAt: at(1200),
      },
    }),
  },
  freeze: {
    about:
      'An operator froze or resumed automation, globally or for one root (compacted topic, key: `global` or the root key).',
    event: cloudEvent('freeze', {
      id: '019aab30-1000-7abc-8def-0123456789ab',
      source: 'unicop/bridge',
      subject: 'global',
      time: at(60_000),
      data: {
        scope: 'global',
        rootKey: null,
        frozen: true,
        reason: 'change freeze for the data-centre move (CHG-1042)',
        actor: 'admin-api',
        at: at(60_000),
      },
    }),
  },
  rollout: {
    about:
      'A gradual rollout moved (decision 0061): one NetBox request touched more roots than UNICOP_ROLLOUT_MIN_ROOTS, its intents go in waves; opened, wave_started, halted (a wave failed above the threshold: the held roots wait), resumed, aborted, done (key: the rollout id, the request id).',
    event: cloudEvent('rollout', {
      id: '019aab30-1800-7abc-8def-0123456789ab',
      source: 'unicop/rollout',
      subject: 'rollout/5b1c3d2e-8f4a-4c1e-9d2b-7a6e5f4c3b2a',
      time: at(65_000),
      data: {
        rolloutId: '5b1c3d2e-8f4a-4c1e-9d2b-7a6e5f4c3b2a',
        transition: 'halted',
        state: 'halted',
        wave: 2,
        waves: [1, 2, 9],
        counts: { held: 9, released: 0, succeeded: 2, failed: 1, aborted: 0 },
        reason: 'halted: wave 2 of 3: 1 of 2 runs failed (50%, threshold 10%)',
        actor: 'unicop-rollout',
        at: at(65_000),
      },
    }),
  },
  deadLetter: {
    about:
      'A record a consumer will never be able to handle (not a valid event, or refused by the plugin with a 4xx), set aside with the reason so its partition moves on (key: the original key). The original stays on its topic until its retention ends.',
    event: cloudEvent('deadLetter', {
      id: '019aab30-2000-7abc-8def-0123456789ab',
      source: 'unicop/resolver',
      subject: 'unicop.changes/3@1207',
      time: at(70_000),
      data: {
        consumer: 'unicop-resolver',
        kind: 'refused',
        reason:
          'plugin API resolve/ answered 400: {"changes[0].object_type":["This value does not match the required pattern."]}',
        status: 400,
        topic: 'unicop.changes',
        partition: 3,
        offset: '1207',
        key: 'Legacy-Model:12',
        eventId: '019aab30-1fff-7000-8000-00000000000c',
        value:
          '{"specversion":"1.0","id":"019aab30-1fff-7000-8000-00000000000c","type":"io.unicop.change.v1","data":{"objectType":"Legacy-Model","objectId":12,"…":"…"}}',
        valueTruncated: false,
        at: at(70_000),
      },
    }),
  },
};
