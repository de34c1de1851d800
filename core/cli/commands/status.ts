/**
 * `unicop status [--root KEY] [--json]`: which stage holds work now — NetBox's background queue,
 * the consumer groups' lag, the reconcile queue, the root (with --root), AWX's pending jobs
 * (core/status/why-it-waits.ts). Exit 0 whatever it finds; a stage that cannot be read is shown
 * as unknown with the reason.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { UnicopConfig } from '../../config.js';
import { statusSources } from '../../status/sources.js';
import { describeWait, whyItWaits } from '../../status/why-it-waits.js';
import type { Output } from './output.js';

export async function showStatus(config: UnicopConfig, out: Output, rootKey: string | null): Promise<number> {
  const kafka = new Kafka({
    clientId: 'unicop-cli-status',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
  });
  const sources = statusSources(config, kafka);
  try {
    const status = await whyItWaits(sources, { rootKey });
    out.result(status, describeWait(status));
    return 0;
  } finally {
    await sources.close();
  }
}
