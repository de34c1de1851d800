/**
 * Webhook notifications as AWX sends them: one HTTP request per (job, trigger, notification
 * template), body = the job's `job_metadata`, sent at most once — a delivery that fails is recorded
 * and never retried, which is why UNICOP keeps polling as the fallback.
 */
import type { NotificationTarget } from './config.js';

export interface Delivery {
  job: number;
  trigger: 'started' | 'success' | 'error';
  url: string;
  at: string;
  /** HTTP status of the answer, or the transport error. */
  result: number | string;
  body: Record<string, unknown>;
}

export class Notifier {
  readonly deliveries: Delivery[] = [];
  private readonly sent = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();

  send(
    job: number,
    trigger: Delivery['trigger'],
    target: NotificationTarget,
    body: Record<string, unknown>,
  ): void {
    const key = `${job}:${trigger}:${target.url}`;
    if (this.sent.has(key)) return;
    this.sent.add(key);
    const delivery: Delivery = {
      job,
      trigger,
      url: target.url,
      at: new Date().toISOString(),
      result: 'sending',
      body,
    };
    this.deliveries.push(delivery);
    const request = fetch(target.url, {
      method: target.http_method,
      headers: { 'content-type': 'application/json', 'user-agent': 'awx-double', ...target.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (res) => {
        delivery.result = res.status;
        await res.arrayBuffer();
      })
      .catch((err: unknown) => {
        delivery.result =
          err instanceof Error ? ((err.cause as { code?: string })?.code ?? err.name) : 'error';
      })
      .finally(() => this.inFlight.delete(request));
    this.inFlight.add(request);
  }

  /** Resolves when every delivery started so far has been answered or has failed. */
  async idle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
