/**
 * `unicop status [--root KEY] [--json]`: whether automation is frozen globally (by a person or by
 * the fail-safe, decision 0055: read from `unicop.control` as the bridge and the workers read it),
 * which roots live gradual rollouts hold (their count and the first ten, each with its rollout:
 * core/status/held-roots.ts, decision 0068), then which stage holds work now — NetBox's background
 * queue, the consumer groups' lag, the reconcile queue, the root (with --root), AWX's pending jobs
 * (core/status/why-it-waits.ts). Exit 0 whatever it finds; what cannot be read is shown as unknown
 * with the reason.
 */
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import type { UnicopConfig } from '../../config.js';
import { FreezeView, type GlobalFreeze } from '../../control/freeze-view.js';
import { KafkaEventStream } from '../../event-log/consumer.js';
import { topics } from '../../events/catalogue.js';
import { uuidv7 } from '../../ids.js';
import { pluginClientOptions } from '../../plugin/client.js';
import { RolloutStore } from '../../rollout/store.js';
import { describeHeldRoots, type HeldRoots, readHeldRoots } from '../../status/held-roots.js';
import { statusSources } from '../../status/sources.js';
import { describeWait, whyItWaits } from '../../status/why-it-waits.js';
import type { Output } from './output.js';

/** How long the replay of unicop.control may take before the freeze is reported unknown. */
const freezeReadCapMs = 30_000;

/** How long reading the live rollouts from NetBox may take before the held roots are reported unknown. */
const heldReadCapMs = 30_000;

/** The prefix of the consumer group one `unicop status` reads unicop.control with (deleted after). */
export const statusControlGroupPrefix = 'unicop-cli-status-control-';

/**
 * The global freeze as unicop.control has it now (null: never frozen), or why it could not be read.
 * The read's own consumer group (its offsets committed as the freeze view reads) is deleted when it
 * is done, so a monitor running `unicop status` every few seconds leaves no groups behind.
 */
export async function readGlobalFreeze(kafka: Kafka): Promise<GlobalFreeze | { unknown: string }> {
  const groupId = `${statusControlGroupPrefix}${uuidv7()}`;
  const view = new FreezeView(
    new KafkaEventStream(kafka, { topic: topics.control, groupId }, pino({ level: 'silent' })),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      view.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`unicop.control not replayed within ${freezeReadCapMs / 1000} s`)),
          freezeReadCapMs,
        );
      }),
    ]);
    return view.globalState();
  } catch (error) {
    return { unknown: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
    await view.stop().catch(() => undefined);
    await deleteGroup(kafka, groupId);
  }
}

/** Deletes a consumer group that has no members left; a failure only leaves the group (exit 0 whatever). */
async function deleteGroup(kafka: Kafka, groupId: string): Promise<void> {
  // Few retries: with Kafka away the read has already waited for it, the answer should not wait more.
  const admin = kafka.admin({ retry: { retries: 1, maxRetryTime: 2_000 } });
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch {
    // Kafka unreachable, or the group never joined: nothing to delete, or nothing we can do.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** One line: frozen globally (by whom, since when, why), not frozen, or unknown. */
export function describeGlobalFreeze(freeze: GlobalFreeze | { unknown: string }): string {
  if (freeze && 'unknown' in freeze) return `automation: global freeze unknown (${freeze.unknown})`;
  if (!freeze) return 'automation: not frozen globally';
  if (!freeze.frozen) return `automation: not frozen globally (resumed by ${freeze.actor} at ${freeze.at})`;
  return `automation: FROZEN globally by ${freeze.actor} since ${freeze.at}: ${freeze.reason} (a person lifts it: unicop resume)`;
}

/** The roots live rollouts hold (the plugin's rollouts), or why they could not be read. */
export async function readHeldRootsOf(config: UnicopConfig): Promise<HeldRoots | { unknown: string }> {
  if (!config.UNICOP_NETBOX_TOKEN) return { unknown: 'not configured (no UNICOP_NETBOX_TOKEN)' };
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      readHeldRoots(new RolloutStore(pluginClientOptions(config))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`NetBox's rollouts not read within ${heldReadCapMs / 1000} s`)),
          heldReadCapMs,
        );
      }),
    ]);
  } catch (error) {
    return { unknown: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

export async function showStatus(config: UnicopConfig, out: Output, rootKey: string | null): Promise<number> {
  const kafka = new Kafka({
    clientId: 'unicop-cli-status',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
  });
  const sources = statusSources(config, kafka);
  try {
    const [status, globalFreeze, heldRoots] = await Promise.all([
      whyItWaits(sources, { rootKey }),
      readGlobalFreeze(kafka),
      readHeldRootsOf(config),
    ]);
    out.result(
      { ...status, globalFreeze, heldRoots },
      `${describeGlobalFreeze(globalFreeze)}\n${describeHeldRoots(heldRoots)}\n${describeWait(status)}`,
    );
    return 0;
  } finally {
    await sources.close();
  }
}
