/**
 * The plugin's rollout endpoints (netbox-plugin/unicop/api/rollouts.py, docs/decisions/0061), called
 * as plain requests: they are not in the generated OpenAPI types. The plugin decides each step under
 * the rollout's row lock; these calls only carry the answers.
 */
import { type HttpMethod, type NetboxAnswer, NetboxHttp, NetboxUnavailableError } from '../netbox/http.js';
import { type PluginClientOptions, PluginConflictError, PluginRequestError } from '../plugin/client.js';

export type RolloutState = 'open' | 'halted' | 'aborted' | 'done';
export type MemberState = 'held' | 'released' | 'succeeded' | 'failed' | 'aborted';

export interface RolloutSummary {
  rollout_id: string;
  state: RolloutState;
  plan: string;
  waves: number[];
  current_wave: number;
  wave_started: string | null;
  failure_threshold: number;
  roots_total: number;
  counts: Record<MemberState, number>;
  change_ids: string[];
  actor: string;
  reason: string;
  decided_by: string;
  opened: string;
  ended: string | null;
  members: {
    root_key: string;
    wave: number;
    state: MemberState;
    run_id: string;
    outcome_class: string;
    parked: number;
  }[];
}

/** A step's answer: the rollout after it, what changed, and the held intents it released (to queue). */
export interface RolloutStep {
  rollout: RolloutSummary | null;
  transition: 'opened' | 'wave_started' | 'halted' | 'resumed' | 'aborted' | 'done' | null;
  /** Each root its step released, with the intent held for it ({} when none reached the resolver). */
  release: { root_key: string; intent: unknown }[];
  held?: string[];
  never_launched?: string[];
  /** An end credited to more than one live rollout (rollouts/outcome/): each further rollout's step. */
  also?: RolloutStep[];
}

/** The resolver's question for the intents of one request (netbox-plugin/unicop/rollouts.py gate()). */
export interface GateRequest {
  rollout_id: string;
  plan: string;
  failure_threshold: number;
  min_roots: number;
  change_ids: string[];
  actor: string;
  intents: { root_key: string; intent: unknown }[];
}

/** rollouts/live/'s answer: `roots` is complete for every release up to `at` (NetBox's clock, ISO). */
export interface LiveRolloutRoots {
  at: string;
  roots: string[];
  /** Live rollouts per state, and their held and released members (the workers' rollout gauges). */
  rollouts?: Record<'open' | 'halted', number>;
  members?: Record<'held' | 'released', number>;
}

const base = '/api/plugins/unicop/rollouts/';

function refusal(answer: NetboxAnswer, method: HttpMethod, url: string): Error {
  const path = url.startsWith('/api/plugins/unicop/') ? url.slice('/api/plugins/unicop/'.length) : url;
  if (answer.status >= 500) {
    return new NetboxUnavailableError(`NetBox answered ${answer.status} (${method.toUpperCase()} ${path})`);
  }
  if (answer.status === 409) return new PluginConflictError(path, answer.body);
  return new PluginRequestError(answer.status, path, answer.body);
}

export class RolloutStore {
  private readonly http: NetboxHttp<unknown>;
  constructor(options: PluginClientOptions) {
    this.http = new NetboxHttp<unknown>(options, refusal);
  }

  private async call<T>(method: HttpMethod, url: string, body?: unknown, idempotent = true): Promise<T> {
    const answer = await this.http.send(method, url, undefined, body, idempotent);
    if (answer.status < 200 || answer.status > 299) throw refusal(answer, method, url);
    return answer.body as T;
  }

  /**
   * Which of one request's intents are held: the first time, the plugin reads the request's roots from
   * NetBox's change records and opens a rollout when they are more than `min_roots`; `rollout` is null
   * when the request has none. Repeating it changes nothing.
   */
  gate(request: GateRequest): Promise<RolloutStep> {
    return this.call('post', base, request);
  }

  /**
   * `gate` for the intents of several requests in one call (rollouts/gate/, decision 0069): the answers
   * in the order asked. A refusal (a 4xx) refuses the whole call: ask each request alone to learn which.
   */
  async gateMany(requests: GateRequest[]): Promise<RolloutStep[]> {
    const answer = await this.call<{ results: RolloutStep[] }>('post', `${base}gate/`, { requests });
    return answer.results;
  }

  /**
   * The roots a run's end may be credited to now (released members of live rollouts) and the time up to
   * which the list is complete (rollouts/live/, decision 0069): an end of a root not listed, of a run
   * started before `at`, is credited to no rollout.
   */
  live(): Promise<LiveRolloutRoots> {
    return this.call('get', `${base}live/`);
  }

  /** A run ended: the member's end, and the wave's decision when it was the wave's last run. */
  outcome(end: {
    root_key: string;
    run_id: string;
    state: string;
    outcome_class: string | null;
    started_at: string;
  }): Promise<RolloutStep> {
    return this.call('post', `${base}outcome/`, end);
  }

  /** The rollout with this id, or null. */
  async get(rolloutId: string): Promise<RolloutSummary | null> {
    const url = `${base}${encodeURIComponent(rolloutId)}/`;
    const answer = await this.http.send('get', url);
    if (answer.status === 404) return null;
    if (answer.status < 200 || answer.status > 299) throw refusal(answer, 'get', url);
    return answer.body as RolloutSummary;
  }

  /** The newest rollouts (at most 100), of one state or holding one root when asked. */
  async list(filter: { state?: RolloutState; root?: string } = {}): Promise<RolloutSummary[]> {
    const answer = await this.http.send('get', base, filter);
    if (answer.status < 200 || answer.status > 299) throw refusal(answer, 'get', base);
    return (answer.body as { results: RolloutSummary[] }).results;
  }

  /** A person's decision; a 404 (no such rollout) and a 409 (its state refuses) are PluginRequestErrors. */
  decide(rolloutId: string, decision: 'resume' | 'abort', by: string, reason: string): Promise<RolloutStep> {
    return this.call('post', `${base}${encodeURIComponent(rolloutId)}/${decision}/`, { by, reason }, false);
  }
}
