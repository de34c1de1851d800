/**
 * The status readings' sources built from configuration: NetBox (UNICOP_NETBOX_URL and token),
 * Kafka (the caller's client), the reconcile queue (UNICOP_REDIS_URL), AWX (UNICOP_AWX_URL and
 * token). A source whose token is not configured is left out and reported "not configured".
 * `close()` releases the queue's Redis connection (within 2 s, also when Redis is away).
 */
import { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import type { UnicopConfig } from '../config.js';
import { netboxRest } from '../netbox/rest.js';
import { PluginClient, pluginClientOptions } from '../plugin/client.js';
import { reconcileQueueName } from '../queues.js';
import { RolloutStore } from '../rollout/store.js';
import { caBundleOf } from '../tls/ca-bundle.js';
import type { HeldBy } from './root-change.js';
import type { StatusSources } from './why-it-waits.js';

export function statusSources(
  config: UnicopConfig,
  kafka: Kafka,
): StatusSources & { close(): Promise<void> } {
  const netboxToken = config.UNICOP_NETBOX_TOKEN;
  // The configured CA bundle (UNICOP_NETBOX_CA_FILE) for an https NetBox, as the workers' (0056).
  const netboxOptions = netboxToken ? pluginClientOptions(config) : undefined;
  const plugin = netboxOptions ? new PluginClient(netboxOptions) : undefined;
  const rollouts = netboxOptions ? new RolloutStore(netboxOptions) : undefined;
  const awxCa = caBundleOf('UNICOP_AWX_CA_FILE', config.UNICOP_AWX_CA_FILE);
  const queue = new Queue(reconcileQueueName, {
    connection: { url: config.UNICOP_REDIS_URL, maxRetriesPerRequest: 1, enableOfflineQueue: false },
  });
  queue.on('error', () => undefined); // Redis away: the reading says so
  return {
    ...(netboxToken
      ? {
          netbox: netboxRest(
            config.UNICOP_NETBOX_URL,
            // Read per request: a `vault:` token's new version (LiveSecrets) is used without a restart.
            () => config.UNICOP_NETBOX_TOKEN ?? '',
            config.UNICOP_NETBOX_TIMEOUT_MS,
            netboxOptions?.ca,
          ),
        }
      : {}),
    ...(plugin ? { findRoot: (key: string) => plugin.findRoot(key) } : {}),
    ...(rollouts ? { heldBy: (key: string) => heldBy(rollouts, key) } : {}),
    kafka,
    reconcileQueue: queue,
    ...(config.UNICOP_AWX_TOKEN
      ? {
          awx: {
            url: config.UNICOP_AWX_URL,
            token: () => config.UNICOP_AWX_TOKEN ?? '',
            timeoutMs: config.UNICOP_AWX_TIMEOUT_MS,
            ...(awxCa === undefined ? {} : { ca: awxCa }),
          },
        }
      : {}),
    // A Redis that is away: close() waits for a connection that never comes; disconnect then.
    close: async () => {
      await Promise.race([queue.close(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      await queue.disconnect().catch(() => undefined);
    },
  };
}

/** The live rollout (open or halted) whose member for this root is held, or null (docs/decisions/0061). */
export async function heldBy(store: Pick<RolloutStore, 'list'>, rootKey: string): Promise<HeldBy | null> {
  for (const state of ['open', 'halted'] as const) {
    for (const rollout of await store.list({ state, root: rootKey })) {
      const member = rollout.members.find((m) => m.root_key === rootKey && m.state === 'held');
      if (member) {
        return {
          rolloutId: rollout.rollout_id,
          state: rollout.state,
          wave: member.wave + 1,
          currentWave: rollout.current_wave + 1,
          waves: rollout.waves.length,
        };
      }
    }
  }
  return null;
}
