/**
 * `unicop root status <key>`: a root as the NetBox plugin holds it now (core/plugin/client.ts) —
 * its status, freeze, lease holder, last run, and whether its current snapshot hash is the one last
 * reconciled.
 */
import type { UnicopConfig } from '../../config.js';
import {
  NetboxUnavailableError,
  PluginClient,
  type PluginRoot,
  pluginClientOptions,
} from '../../plugin/client.js';
import { CommandFailedError, type Output } from './output.js';

export interface RootStatus {
  key: string;
  kind: string;
  status: PluginRoot['status'];
  frozen: boolean;
  frozenReason: string | null;
  lease: {
    live: boolean;
    holder: string | null;
    token: number | null;
    expiresAt: string | null;
    highestToken: number;
  };
  lastRun: {
    runId: string;
    state: string;
    cause: string;
    fencingToken: number;
    snapshotHash: string;
    started: string;
    finished: string | null;
    awxJobId: number | null;
    awxJobUrl: string | null;
    failureClass: string | null;
  } | null;
  currentHash: string | null;
  /** The current hash predates a change NetBox has not hashed yet. */
  hashStale: boolean;
  lastReconciledHash: string | null;
  /** The current snapshot hash is the last reconciled one. */
  inStep: boolean;
}

export function rootStatus(root: PluginRoot): RootStatus {
  const run = root.last_run;
  return {
    key: root.key,
    kind: root.kind,
    status: root.status,
    frozen: root.frozen,
    frozenReason: root.frozen_reason || null,
    lease: {
      live: root.lease.live,
      holder: root.lease.holder,
      token: root.lease.token,
      expiresAt: root.lease.expires_at,
      highestToken: root.lease.highest_token,
    },
    lastRun: run
      ? {
          runId: run.run_id,
          state: run.state,
          cause: run.cause,
          fencingToken: run.fencing_token,
          snapshotHash: run.snapshot_hash,
          started: run.started,
          finished: run.finished,
          awxJobId: run.awx_job_id,
          awxJobUrl: run.awx_job_url || null,
          failureClass: run.outcome_class || null,
        }
      : null,
    currentHash: root.current_hash || null,
    lastReconciledHash: root.last_reconciled_hash || null,
    // A stale current hash (a change not hashed yet: plugin decision 0043) is not in step, whatever it says.
    hashStale: root.hash_stale === true,
    inStep: Boolean(root.current_hash) && !root.hash_stale && root.current_hash === root.last_reconciled_hash,
  };
}

const short = (hash: string | null) => (hash ? hash.slice(0, 12) : 'none');

export function describeStatus(s: RootStatus): string {
  const lease = s.lease.live
    ? `held by ${s.lease.holder} (token ${s.lease.token}, until ${s.lease.expiresAt})`
    : `free (highest token issued ${s.lease.highestToken})`;
  const run = s.lastRun;
  const lastRun = run
    ? `${run.runId} ${run.state}${run.failureClass ? ` (${run.failureClass})` : ''}, cause ${run.cause}, token ${run.fencingToken}, started ${run.started}${run.finished ? `, finished ${run.finished}` : ''}${run.awxJobId ? `, AWX job ${run.awxJobId}${run.awxJobUrl ? ` ${run.awxJobUrl}` : ''}` : ''}`
    : 'none';
  return [
    `root ${s.key} (${s.kind}): ${s.status}`,
    `  frozen:     ${s.frozen ? `yes — ${s.frozenReason ?? 'no reason recorded'}` : 'no'}`,
    `  lease:      ${lease}`,
    `  last run:   ${lastRun}`,
    `  hash:       current ${short(s.currentHash)}${s.hashStale ? ' (stale: a change not hashed yet)' : ''}, last reconciled ${short(s.lastReconciledHash)} — ${s.inStep ? 'in step' : s.hashStale ? 'not known yet' : 'differs'}`,
  ].join('\n');
}

export async function showRootStatus(config: UnicopConfig, out: Output, key: string): Promise<number> {
  if (!config.UNICOP_NETBOX_TOKEN) {
    throw new CommandFailedError(
      'root status reads the NetBox plugin: set UNICOP_NETBOX_TOKEN (a reference)',
    );
  }
  const plugin = new PluginClient(pluginClientOptions(config));
  let root: PluginRoot | null;
  try {
    root = await plugin.findRoot(key);
  } catch (error) {
    if (error instanceof NetboxUnavailableError) {
      throw new CommandFailedError(`NetBox at ${config.UNICOP_NETBOX_URL} is unavailable: ${error.message}`);
    }
    throw error;
  }
  if (!root) throw new CommandFailedError(`NetBox has no root ${key}`, { rootKey: key });
  const status = rootStatus(root);
  out.result(status, describeStatus(status));
  return 0;
}
