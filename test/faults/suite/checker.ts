/**
 * The invariant checker a fault run ends with, once everything is quiet. Each invariant is read
 * from the systems of record, never from the suite's own bookkeeping alone:
 *
 * 1. every accepted delivery is on Kafka — each change the bridge logged as accepted (it answered
 *    202) is on unicop.changes;
 * 2. every root at its final hash — NetBox holds the last edit the editors had acknowledged, and
 *    the root's last reconciled hash is its current hash;
 * 3. no two AWX jobs of one root overlap — from AWX's own job list (started/finished);
 * 4. no run with two AWX jobs — AWX's jobs grouped by the run id UNICOP launched them with;
 * 5. every run has exactly one terminal outcome — terminal in NetBox, and one outcome state for
 *    it on unicop.outcomes, the same as NetBox's;
 * 6. no false `failed` run caused by a crash — no `lease_lost`, and no run failed whose AWX job
 *    succeeded;
 * 7. no secrets in any log — the suite's processes' logs and what the stack's services logged
 *    during the run.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import { topics } from '../../../core/events/catalogue.js';
import { terminalRunStates } from '../../../core/runs/state-machine.js';
import type { AwxJobRecord } from '../../support/awx.js';
import { topicEnds } from '../../support/kafka.js';
import { netbox } from '../../support/netbox.js';
import { uniqueName } from '../../support/stack.js';
import type { FaultRoot } from './generator.js';

export interface Invariant {
  name: string;
  held: boolean;
  /** What broke it (at most a few dozen lines), or what was counted. */
  detail: string[];
}

export interface RunRecord {
  run_id: string;
  root: { key: string };
  state: string;
  outcome_class: string;
  awx_job_id: number | null;
  cause: string;
  started: string;
  finished: string | null;
}

export type TopicStart = { partition: number; offset: string }[];

/** Each partition's end offset now: where a later read of what the run wrote begins. */
export { topicEnds };

export interface TopicRecord {
  key: string | null;
  /** When Kafka stored it (ms since epoch; the broker's append time for a producer that sets none). */
  timestamp: number;
  value: Record<string, unknown>;
}

/** Every record written to `topic` from `start` up to its end now, as parsed JSON (keyed). */
export async function readTopicFrom(kafka: Kafka, topic: string, start: TopicStart): Promise<TopicRecord[]> {
  const ends = await topicEnds(kafka, topic);
  const remaining = new Map<number, bigint>();
  for (const end of ends) {
    const from = BigInt(start.find((s) => s.partition === end.partition)?.offset ?? '0');
    if (BigInt(end.offset) > from) remaining.set(end.partition, BigInt(end.offset));
  }
  const out: TopicRecord[] = [];
  if (remaining.size === 0) return out;
  const groupId = uniqueName('fault-check');
  const admin = kafka.admin();
  await admin.connect();
  await admin.setOffsets({ groupId, topic, partitions: start });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    // A cap, not a budget: reading a few thousand records takes seconds.
    const timer = setTimeout(
      () => reject(new Error(`reading ${topic}: the end was not reached within 300 s`)),
      300_000,
    );
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          const end = remaining.get(partition);
          if (end === undefined) return;
          try {
            const value: unknown = JSON.parse(String(message.value));
            if (value && typeof value === 'object') {
              out.push({
                key: message.key ? String(message.key) : null,
                timestamp: Number(message.timestamp),
                value: value as Record<string, unknown>,
              });
            }
          } catch {
            // a record that is not JSON is no change or outcome of ours
          }
          if (BigInt(message.offset) + 1n >= end) {
            remaining.delete(partition);
            if (remaining.size === 0) done();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}

/** Every run NetBox holds for a root (the run listing, page by page). */
export async function runsOf(rootKey: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let path: string | null = `/api/plugins/unicop/runs/?root=${encodeURIComponent(rootKey)}&limit=200`;
  while (path) {
    const page: { next: string | null; results: RunRecord[] } = await netbox('GET', path);
    out.push(...page.results);
    path = page.next ? new URL(page.next).pathname + new URL(page.next).search : null;
  }
  return out;
}

const open = (state: string) => !(terminalRunStates as readonly string[]).includes(state);

export interface CheckInput {
  kafka: Kafka;
  roots: FaultRoot[];
  /** The editors' last acknowledged description per root (roots never edited keep theirs). */
  finalDescription: Map<string, string>;
  changesStart: TopicStart;
  /** The acknowledged edits, to time each one's arrival on unicop.changes. */
  edits: { siteId: number; description: string; at: number }[];
  /** The processes' own logs (structured lines expected). */
  processLogs: string[];
  outcomesStart: TopicStart;
  /** The bridge's log file(s): its 'change accepted' lines name each accepted change. */
  bridgeLogs: string[];
  awxJobs: AwxJobRecord[];
  /** Log files to scan whole, and stack logs to scan from the given byte offset. */
  logs: { file: string; from: number }[];
  /** Secret values that must appear in no log, by what they are (the name is reported, never the value). */
  secrets: Record<string, string>;
}

export interface CheckResult {
  invariants: Invariant[];
  runs: RunRecord[];
  /** Failed runs by outcome class (faults make honest failures too: AWX gone is executor_unavailable). */
  failedByClass: Record<string, number>;
  /** Each acknowledged edit → its change stored on unicop.changes, ms (issue #14 observation 5). */
  changeLatencyMs: number[];
  /** Edits whose change is not on unicop.changes (NetBox dropped the delivery; the sweeper reconciled the root). */
  editsWithoutChange: number;
  /** Lines of the processes' logs that are not structured (JSON) — observation 9. */
  unstructuredLines: number;
  /** Lines with ECONNRESET in the processes' logs, the Kafka client's not counted — observation 7. */
  connectionResets: number;
}

function invariant(name: string, problems: string[], counted: string[] = []): Invariant {
  return { name, held: problems.length === 0, detail: problems.length > 0 ? problems.slice(0, 40) : counted };
}

export async function checkInvariants(input: CheckInput): Promise<CheckResult> {
  const invariants: Invariant[] = [];
  const keys = new Set(input.roots.map((r) => r.rootKey));

  // 1. Every accepted delivery on Kafka.
  const accepted = new Set<string>();
  for (const file of input.bridgeLogs) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes('"change accepted"')) continue;
      try {
        const changeId = (JSON.parse(line) as { changeId?: string }).changeId;
        if (changeId) accepted.add(changeId);
      } catch {
        // a line cut by kill -9 mid-write
      }
    }
  }
  const changes = await readTopicFrom(input.kafka, topics.changes, input.changesStart);
  const onKafka = new Set(
    changes.map((c) => (c.value.data as { changeId?: string } | undefined)?.changeId).filter(Boolean),
  );
  const lost = [...accepted].filter((id) => !onKafka.has(id));
  invariants.push(
    invariant(
      'every accepted delivery (202) is on unicop.changes',
      lost.map((id) => `change ${id} accepted by the bridge, not on unicop.changes`),
      [`${accepted.size} accepted, all on unicop.changes`],
    ),
  );

  // 2. Every root at its final hash.
  const notFinal: string[] = [];
  for (const root of input.roots) {
    const site = await netbox<{ description: string }>('GET', `/api/dcim/sites/${root.siteId}/`);
    const wanted = input.finalDescription.get(root.rootKey);
    if (wanted !== undefined && site.description !== wanted) {
      notFinal.push(`${root.rootKey}: NetBox holds ${JSON.stringify(site.description)}, last edit ${wanted}`);
    }
    const found = await netbox<{
      results: {
        key: string;
        current_hash: string;
        hash_stale: boolean;
        last_reconciled_hash: string;
        status: string;
      }[];
    }>('GET', `/api/plugins/unicop/roots/?key=${encodeURIComponent(root.rootKey)}`);
    const r = found.results.find((x) => x.key === root.rootKey);
    if (!r) notFinal.push(`${root.rootKey}: no root in NetBox`);
    else if (r.hash_stale || r.current_hash !== r.last_reconciled_hash) {
      notFinal.push(
        `${root.rootKey}: status ${r.status}, current ${r.current_hash.slice(0, 12)}${r.hash_stale ? ' (stale)' : ''} ≠ reconciled ${r.last_reconciled_hash.slice(0, 12) || '(none)'}`,
      );
    }
  }
  invariants.push(
    invariant('every root at its final hash', notFinal, [`${input.roots.length} roots in sync`]),
  );

  // 3 and 4. AWX's own job list.
  const jobs = input.awxJobs.filter((j) => j.root !== null && keys.has(j.root));
  const overlaps: string[] = [];
  const byRoot = new Map<string, AwxJobRecord[]>();
  for (const j of jobs) byRoot.set(j.root as string, [...(byRoot.get(j.root as string) ?? []), j]);
  for (const [root, list] of byRoot) {
    const ran = list
      .filter((j) => j.started)
      .sort((a, b) => Date.parse(a.started as string) - Date.parse(b.started as string));
    for (let i = 1; i < ran.length; i++) {
      const before = ran[i - 1] as AwxJobRecord;
      const after = ran[i] as AwxJobRecord;
      if (!before.finished || Date.parse(before.finished) > Date.parse(after.started as string)) {
        overlaps.push(
          `${root}: AWX job ${after.id} started ${after.started} while job ${before.id} ran (finished ${before.finished ?? 'never'})`,
        );
      }
    }
  }
  invariants.push(
    invariant('no two AWX jobs of one root overlap', overlaps, [
      `${jobs.length} AWX jobs of ${byRoot.size} roots`,
    ]),
  );
  const byRun = new Map<string, number[]>();
  for (const j of jobs) if (j.run_id) byRun.set(j.run_id, [...(byRun.get(j.run_id) ?? []), j.id]);
  const doubled = [...byRun]
    .filter(([, ids]) => ids.length > 1)
    .map(([run, ids]) => `run ${run}: AWX jobs ${ids.join(', ')}`);
  invariants.push(invariant('no run with two AWX jobs', doubled, [`${byRun.size} runs launched`]));

  // 5. Exactly one terminal outcome per run.
  const runs: RunRecord[] = [];
  for (const root of input.roots) runs.push(...(await runsOf(root.rootKey)));
  const outcomes = await readTopicFrom(input.kafka, topics.outcomes, input.outcomesStart);
  const outcomeStates = new Map<string, string[]>();
  for (const o of outcomes) {
    const data = o.value.data as { runId?: string; rootKey?: string; state?: string } | undefined;
    if (!data?.runId || !data.rootKey || !keys.has(data.rootKey)) continue;
    outcomeStates.set(data.runId, [...(outcomeStates.get(data.runId) ?? []), data.state ?? '?']);
  }
  const outcomeProblems: string[] = [];
  let duplicates = 0;
  for (const run of runs) {
    const states = outcomeStates.get(run.run_id) ?? [];
    const distinct = [...new Set(states)];
    duplicates += states.length - distinct.length;
    if (open(run.state)) outcomeProblems.push(`run ${run.run_id} (${run.root.key}) still ${run.state}`);
    else if (distinct.length !== 1) {
      outcomeProblems.push(
        `run ${run.run_id} (${run.root.key}) ${run.state} in NetBox, outcomes on Kafka: ${states.join(', ') || 'none'}`,
      );
    } else if (distinct[0] !== run.state) {
      outcomeProblems.push(
        `run ${run.run_id} (${run.root.key}) ${run.state} in NetBox, ${distinct[0]} on unicop.outcomes`,
      );
    }
  }
  invariants.push(
    invariant(
      'every run has exactly one terminal outcome (NetBox and unicop.outcomes agree)',
      outcomeProblems,
      [`${runs.length} runs, each terminal with one outcome state (${duplicates} repeated outcome records)`],
    ),
  );

  // 6. No false failures caused by a crash.
  const awxById = new Map(input.awxJobs.map((j) => [j.id, j]));
  const failedByClass: Record<string, number> = {};
  const falseFailures: string[] = [];
  for (const run of runs.filter((r) => r.state === 'failed')) {
    failedByClass[run.outcome_class || '(none)'] = (failedByClass[run.outcome_class || '(none)'] ?? 0) + 1;
    const job = run.awx_job_id === null ? undefined : awxById.get(run.awx_job_id);
    if (run.outcome_class === 'lease_lost') {
      falseFailures.push(
        `run ${run.run_id} (${run.root.key}) failed lease_lost (AWX job ${run.awx_job_id ?? 'none'})`,
      );
    } else if (job?.status === 'successful') {
      falseFailures.push(
        `run ${run.run_id} (${run.root.key}) failed ${run.outcome_class}, its AWX job ${job.id} successful`,
      );
    }
  }
  invariants.push(
    invariant('no false failed runs caused by a crash', falseFailures, [
      `failed runs by class: ${JSON.stringify(failedByClass)}`,
    ]),
  );

  // 7. No secrets in any log.
  const leaks: string[] = [];
  for (const { file, from } of input.logs) {
    let text: string;
    try {
      const size = statSync(file).size;
      if (size <= from) continue;
      const buffer = Buffer.alloc(size - from);
      const fd = openSync(file, 'r');
      readSync(fd, buffer, 0, buffer.length, from);
      closeSync(fd);
      text = buffer.toString('utf8');
    } catch {
      continue;
    }
    for (const [what, value] of Object.entries(input.secrets)) {
      if (value.length >= 8 && text.includes(value)) leaks.push(`${what} in ${file}`);
    }
  }
  invariants.push(
    invariant('no secrets in any log', leaks, [
      `${input.logs.length} logs scanned for ${Object.keys(input.secrets).length} secrets`,
    ]),
  );

  // Figures for the observations: edit → unicop.changes, unstructured lines, resets.
  const stored = new Map<string, number>();
  for (const c of changes) {
    const data = c.value.data as {
      objectType?: string;
      objectId?: number;
      postchange?: { description?: string } | null;
    };
    if (data?.objectType !== 'dcim.site' || data.postchange?.description === undefined) continue;
    const key = `${data.objectId}/${data.postchange.description}`;
    if (!stored.has(key)) stored.set(key, c.timestamp);
  }
  const changeLatencyMs: number[] = [];
  let editsWithoutChange = 0;
  for (const edit of input.edits) {
    const at = stored.get(`${edit.siteId}/${edit.description}`);
    if (at === undefined) editsWithoutChange += 1;
    else changeLatencyMs.push(Math.max(0, at - edit.at));
  }
  let unstructuredLines = 0;
  let connectionResets = 0;
  for (const file of input.processLogs) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      if (!line.startsWith('{') && !line.startsWith('[fault suite]')) unstructuredLines += 1;
      // The Kafka client's own resets (every line of a Kafka fault) are not observation 7's.
      if (line.includes('ECONNRESET') && !line.includes('"logger":"kafkajs"')) connectionResets += 1;
    }
  }
  return {
    invariants,
    runs,
    failedByClass,
    changeLatencyMs,
    editsWithoutChange,
    unstructuredLines,
    connectionResets,
  };
}
