/**
 * Client of the `unicop` NetBox plugin API (docs/plugin-api.md), typed by the types openapi-typescript
 * generates from openapi/plugin.yaml (the schema the plugin serves), over the one NetBox HTTP client
 * (core/netbox/http.ts: axios, keep-alive, timeouts, Bearer token). Failures are classified once:
 * NetBox unreachable, timing out or answering 5xx is `NetboxUnavailableError` (retriable: the
 * caller pauses and retries); a 409 is `PluginConflictError`; any other 4xx is `PluginRequestError`
 * (our request was wrong: not retried). The token is sent, never logged or put in an error message.
 */
import type { components, paths } from '../../openapi/generated/plugin.js';
import type { UnicopConfig } from '../config.js';
import { type NetboxAnswer, NetboxHttp, NetboxUnavailableError, type TokenSource } from '../netbox/http.js';
import type { RunState } from '../runs/state-machine.js';
import type { CredentialRefresh } from '../secrets/runtime-config.js';
import { caBundleOf } from '../tls/ca-bundle.js';

export { NetboxUnavailableError } from '../netbox/http.js';
/** The run states, declared with their transitions in core/runs/state-machine.ts. */
export type { RunState } from '../runs/state-machine.js';

type Schemas = components['schemas'];

/** One change as the resolver sends it (`POST resolve/`). */
export type ChangeRef = Schemas['ChangeRequest'];
/** A root as the plugin lists it. */
export type PluginRoot = Schemas['Root'];
/** A root's lease as the plugin issued it. */
export type RootLease = Schemas['Lease'];
export type RootSnapshot = Schemas['RootSnapshot'];
export type RootCurrentHash = Schemas['RootCurrentHash'];
/** A run record as the plugin stores it (docs/plugin-api.md, Runs). */
export type PluginRun = Schemas['ReconciliationRun'];
export type RunLogLine = Schemas['LogLineRequest'];
/** What a lean run write answers: the run's id, state and finish time (docs/decisions/0064). */
export type RunWritten = Schemas['RunWritten'];

/** The fields a run write may carry; every write carries the fencing token. */
export type RunWrite = Pick<
  Schemas['PatchedReconciliationRunRequest'],
  | 'snapshot_hash'
  | 'awx_job_type'
  | 'awx_job_id'
  | 'awx_job_url'
  /** The run's verify job (docs/decisions/0066): recorded before anything waits on it. */
  | 'verify_job_id'
  | 'outcome_class'
  | 'summary'
  | 'log_lines'
  /** A journal entry on the root's anchor object, written in the same fenced transaction. */
  | 'journal'
  /** Blast radius (docs/decisions/0065): the members' digests, the diff that held the run, the decision. */
  | 'member_digests'
  | 'blast_radius'
  | 'gate_decision'
> & { fencing_token: number; state?: RunState };

/**
 * A new run record: a run write plus what identifies the run and its cause chain (the intent, the
 * NetBox change(s) and request(s), the actor and the changed object: docs/decisions/0039).
 */
export type RunCreate = RunWrite &
  Pick<Schemas['ReconciliationRunRequest'], 'run_id' | 'snapshot_hash' | 'cause'> &
  Partial<Pick<Schemas['ReconciliationRunRequest'], RunCauseChainField | 'mode'>> & {
    root: string;
  };

/** The run fields that carry its cause chain, written when the run is created. */
export type RunCauseChainField =
  | 'intent_id'
  | 'change_ids'
  | 'request_ids'
  | 'actor'
  | 'cause_event'
  | 'cause_object_type'
  | 'cause_object_id';

export class PluginRequestError extends Error {
  override readonly name: string = 'PluginRequestError';
  readonly retriable = false;
  constructor(
    readonly status: number,
    readonly path: string,
    body: unknown,
  ) {
    super(`plugin API ${path} answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
    this.body = typeof body === 'string' ? body.slice(0, 300) : body;
  }
  readonly body: unknown;
}

/**
 * A 409 from the plugin: a live lease of another holder, a frozen root, a write refused by the
 * fence (a token lower — or higher — than the highest issued), or a run state change the plugin's
 * state machine does not allow (`allowed`: the states the run may move to). Carries the body fields.
 */
export class PluginConflictError extends PluginRequestError {
  override readonly name: string = 'PluginConflictError';
  readonly detail: string;
  readonly holder: string | null;
  readonly expiresAt: string | null;
  readonly frozen: boolean;
  readonly allowed: string[] | null;
  constructor(path: string, body: unknown) {
    super(409, path, body);
    const fields: Partial<Record<string, unknown>> = body && typeof body === 'object' ? { ...body } : {};
    this.detail = typeof fields.detail === 'string' ? fields.detail : 'conflict';
    this.holder = typeof fields.holder === 'string' && fields.holder ? fields.holder : null;
    this.expiresAt = typeof fields.expires_at === 'string' ? fields.expires_at : null;
    // A root held in a rollout wave not opened yet (docs/decisions/0061) is parked like a frozen one.
    this.frozen = fields.frozen === true || typeof fields.held_by === 'string';
    this.allowed = Array.isArray(fields.allowed) ? fields.allowed.map(String) : null;
  }
}

export interface PluginClientOptions {
  /** NetBox's base URL, without /api. */
  baseUrl: string;
  /**
   * NetBox API token, or where to read the current one; kept private, never logged or put in an
   * error.
   */
  token: TokenSource;
  /** On a 401/403: whether the token has a new value (read again from Vault); then sent once more. */
  onUnauthorized?: () => Promise<boolean>;
  /** Per-request timeout; UNICOP_NETBOX_TIMEOUT_MS by default. */
  timeoutMs?: number;
  /** The connection pool's bound and idle timeout (UNICOP_NETBOX_MAX_SOCKETS, _IDLE_SOCKET_MS). */
  maxSockets?: number;
  idleSocketMs?: number;
  /** PEM CA bundle trusted for an https NetBox instead of the system's (UNICOP_NETBOX_CA_FILE). */
  ca?: string;
}

/**
 * The client's options from the configuration (core/config.ts documents each value); the CA bundle
 * is read here, a ConfigError naming UNICOP_NETBOX_CA_FILE when it is not one. The token is read
 * from the configuration object for every request, so a `vault:` token's new version (written there
 * by the process's LiveSecrets) is used without a restart; given `secrets`, a 401/403 reads it from
 * Vault at once and, when it changed, sends the request once more (decision 0056).
 */
export function pluginClientOptions(
  config: Pick<
    UnicopConfig,
    | 'UNICOP_NETBOX_URL'
    | 'UNICOP_NETBOX_TOKEN'
    | 'UNICOP_NETBOX_TIMEOUT_MS'
    | 'UNICOP_NETBOX_MAX_SOCKETS'
    | 'UNICOP_NETBOX_IDLE_SOCKET_MS'
    | 'UNICOP_NETBOX_CA_FILE'
  >,
  secrets?: CredentialRefresh | null,
): PluginClientOptions {
  const ca = caBundleOf('UNICOP_NETBOX_CA_FILE', config.UNICOP_NETBOX_CA_FILE);
  return {
    baseUrl: config.UNICOP_NETBOX_URL,
    token: () => config.UNICOP_NETBOX_TOKEN ?? '',
    ...(secrets ? { onUnauthorized: () => secrets.refreshCredential('UNICOP_NETBOX_TOKEN') } : {}),
    timeoutMs: config.UNICOP_NETBOX_TIMEOUT_MS,
    maxSockets: config.UNICOP_NETBOX_MAX_SOCKETS,
    idleSocketMs: config.UNICOP_NETBOX_IDLE_SOCKET_MS,
    ...(ca === undefined ? {} : { ca }),
  };
}

const prefix = '/api/plugins/unicop/';

function refusal(answer: NetboxAnswer, method: string, url: string): Error {
  const path = url.startsWith(prefix) ? url.slice(prefix.length) : url;
  if (answer.status >= 500) {
    return new NetboxUnavailableError(`NetBox answered ${answer.status} (${method.toUpperCase()} ${path})`);
  }
  if (answer.status === 409) return new PluginConflictError(path, answer.body);
  return new PluginRequestError(answer.status, path, answer.body);
}

export class PluginClient {
  private readonly http: NetboxHttp<paths>;
  constructor(options: PluginClientOptions) {
    this.http = new NetboxHttp<paths>(options, refusal);
  }

  /** Root keys touched by each change, in the order given (at most 500 per call). */
  async resolve(changes: ChangeRef[]): Promise<string[][]> {
    const out: string[][] = [];
    for (let i = 0; i < changes.length; i += 500) {
      const body = await this.http.call('post', '/api/plugins/unicop/resolve/', {
        // A read sent as POST (the changes do not fit a query string): repeating it changes nothing.
        idempotent: true,
        body: { changes: changes.slice(i, i + 500) },
      });
      out.push(...body.results.map((r) => r.root_keys));
    }
    return out;
  }

  /** The root with this key, or null when NetBox has none. */
  async findRoot(key: string): Promise<PluginRoot | null> {
    const page = await this.http.call('get', '/api/plugins/unicop/roots/', { query: { key } });
    return page.results.find((r) => r.key === key) ?? null;
  }

  setFrozen(rootId: number, frozen: boolean, reason: string): Promise<PluginRoot> {
    const init = { path: { id: rootId }, body: { reason } };
    return frozen
      ? this.http.call('post', '/api/plugins/unicop/roots/{id}/freeze/', init)
      : this.http.call('post', '/api/plugins/unicop/roots/{id}/unfreeze/', init);
  }

  /** One page of the bulk listing (keyset-paginated by id). */
  /** A page of roots; with `fields` (NetBox's field selection) each root carries only those fields. */
  listRoots(
    options: { cursor?: string | null; limit?: number; kind?: string; fields?: readonly string[] } = {},
  ): Promise<Schemas['PaginatedRootList']> {
    return this.http.call('get', '/api/plugins/unicop/roots/', {
      query: {
        limit: options.limit ?? 500,
        ...(options.cursor ? { cursor: options.cursor } : {}),
        ...(options.kind ? { kind: options.kind } : {}),
        ...(options.fields ? { fields: options.fields.join(',') } : {}),
      },
    });
  }

  /** Every root, page by page; with `fields`, only those fields of each (the caller reads no other). */
  async *allRoots(pageSize = 500, fields?: readonly (keyof PluginRoot)[]): AsyncGenerator<PluginRoot> {
    let cursor: string | null = null;
    do {
      const page: Schemas['PaginatedRootList'] = await this.listRoots({
        cursor,
        limit: pageSize,
        ...(fields ? { fields } : {}),
      });
      yield* page.results;
      cursor = page.next_cursor;
    } while (cursor);
  }

  snapshot(rootId: number): Promise<RootSnapshot> {
    return this.http.call('get', '/api/plugins/unicop/roots/{id}/snapshot/', { path: { id: rootId } });
  }

  /**
   * The root's hash computed now and its hash_generation, read together, without the snapshot: what
   * the reconciler compares with its lease's answer just before a launch (docs/decisions/0067).
   */
  currentHash(rootId: number): Promise<RootCurrentHash> {
    return this.http.call('get', '/api/plugins/unicop/roots/{id}/hash/', { path: { id: rootId } });
  }

  /**
   * Takes the root's lease; a PluginConflictError while another holder's lease is live or the root is
   * frozen. With `context`, the answer also carries what a reconciler reads next — the root's last run
   * and last reconciled hash, its open runs and its snapshot, read once the lease was taken — in
   * place of three more requests (docs/decisions/0045).
   */
  acquireLease(
    rootId: number,
    holder: string,
    ttlSeconds: number,
    options: { context?: boolean } = {},
  ): Promise<RootLease> {
    return this.http.call('post', '/api/plugins/unicop/roots/{id}/lease/', {
      path: { id: rootId },
      body: { holder, ttl_seconds: ttlSeconds, context: options.context === true },
    });
  }

  renewLease(rootId: number, token: number, ttlSeconds: number): Promise<RootLease> {
    return this.http.call('post', '/api/plugins/unicop/roots/{id}/lease/renew/', {
      path: { id: rootId },
      // The same token again only moves the expiry again (a release, by contrast, answers 409 twice).
      idempotent: true,
      body: { token, ttl_seconds: ttlSeconds },
    });
  }

  async releaseLease(rootId: number, token: number): Promise<void> {
    await this.http.call('post', '/api/plugins/unicop/roots/{id}/lease/release/', {
      path: { id: rootId },
      body: { token },
    });
  }

  createRun(run: RunCreate): Promise<PluginRun> {
    return this.http.call('post', '/api/plugins/unicop/runs/', { body: run });
  }

  /** A fenced write to a run; PluginConflictError when the fence or the run state machine refuses it. */
  updateRun(runId: string, write: RunWrite): Promise<PluginRun> {
    return this.http.call('patch', '/api/plugins/unicop/runs/{run_id}/', {
      path: { run_id: runId },
      // Fenced, and a write may keep the run's state: the same write twice sets the same fields. A
      // journal entry would be written twice, so a write carrying one is not repeated.
      idempotent: write.journal === undefined,
      body: write,
    });
  }

  /**
   * The lean run write (`POST runs/{run_id}/write/`, docs/decisions/0064): the fence, the run state
   * machine, the journal entry and the root's last run as updateRun, stored without NetBox's model
   * serializer or a change-log record, answered with the run's id, state and finish time. What the
   * reconciler writes after a run's creation.
   */
  writeRun(runId: string, write: RunWrite): Promise<RunWritten> {
    return this.http.call('post', '/api/plugins/unicop/runs/{run_id}/write/', {
      path: { run_id: runId },
      // As updateRun: fenced and state-keeping, so repeatable, unless it carries a journal entry.
      idempotent: write.journal === undefined,
      body: write,
    });
  }

  /** One run by its id, or null when NetBox holds none. */
  async findRun(runId: string): Promise<PluginRun | null> {
    try {
      return await this.http.call('get', '/api/plugins/unicop/runs/{run_id}/', { path: { run_id: runId } });
    } catch (error) {
      if (error instanceof PluginRequestError && error.status === 404) return null;
      throw error;
    }
  }

  /** The runs of every root in the given states, newest first (one page of at most `limit`). */
  async runsInStates(states: readonly RunState[], limit = 200): Promise<PluginRun[]> {
    const page = await this.http.call('get', '/api/plugins/unicop/runs/', {
      query: { limit, state: [...states] },
    });
    return page.results;
  }

  /** The runs of one root in `state` at snapshot hash `hash`, newest first (at most `limit`). */
  async runsAtHash(rootKey: string, state: RunState, hash: string, limit = 5): Promise<PluginRun[]> {
    const page = await this.http.call('get', '/api/plugins/unicop/runs/', {
      query: { root: rootKey, state: [state], snapshot_hash: [hash], limit },
    });
    return page.results;
  }

  /** The runs of one root, newest first, optionally only those in the given states. */
  async listRuns(rootKey: string, states: readonly RunState[] = []): Promise<PluginRun[]> {
    const page = await this.http.call('get', '/api/plugins/unicop/runs/', {
      query: { root: rootKey, limit: 50, ...(states.length ? { state: [...states] } : {}) },
    });
    return page.results;
  }
}
