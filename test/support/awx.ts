/**
 * The AWX a test drives: the stack's real AWX 24.6.1 by default, or the AWX double for the faults
 * real AWX cannot produce on demand (docs/awx-double.md lists which tests and why). Both answer
 * the same questions — which jobs a root had, when each ran — so a test reads the same either way.
 *
 * `UNICOP_TEST_AWX=double` runs every loop test against the double instead (quicker, for local
 * iteration); CI never sets it.
 */
import { readFile } from 'node:fs/promises';
import { AwxClient } from '../../core/awx/index.js';
import { resolveSecret } from '../../core/config.js';
import { basicAuth, type DoubleJobRecord, startTestDouble, type TestDouble } from '../awx/support.js';
import { stackFact } from './stack.js';

export type AwxKind = 'real' | 'double';

/** One job or workflow job as a test sees it, from either AWX (the double's record, without its history). */
export type AwxJobRecord = Pick<
  DoubleJobRecord,
  'id' | 'template' | 'root' | 'run_id' | 'status' | 'started' | 'finished'
> & { type: 'job' | 'workflow_job' };

export interface AwxUnderTest {
  readonly kind: AwxKind;
  readonly url: string;
  readonly token: string;
  readonly client: AwxClient;
  /** The double itself (its fault switches and records), when kind is 'double'. */
  readonly double?: TestDouble;
  /** Every job and workflow job launched since this AWX was taken for the test, oldest first. */
  jobs(): Promise<AwxJobRecord[]>;
  /** The same, for one root. */
  jobsOf(rootKey: string): Promise<AwxJobRecord[]>;
  /** Puts back what the test changed (real AWX's template fields) or stops the double. */
  stop(): Promise<void>;
}

/** Which AWX the loop tests use unless a test asks for one: real, or what UNICOP_TEST_AWX says. */
export function defaultAwxKind(): AwxKind {
  const wanted = process.env.UNICOP_TEST_AWX ?? 'real';
  if (wanted !== 'real' && wanted !== 'double') {
    throw new Error(`UNICOP_TEST_AWX must be real or double, not ${JSON.stringify(wanted)}`);
  }
  return wanted;
}

/** Template names of the root catalogue, as the stack's NetBox maps its root kinds to them. */
export const catalogueTemplates = {
  prefix: 'unicop-prefix',
  site: 'unicop-site',
  approval: 'unicop-site-with-approval',
} as const;

/**
 * The AWX template ids the stack's NetBox gives its root kinds (scripts/stack.d/netbox.sh): real
 * AWX's ids of the catalogue's names once the awx service is up, else the double's 7, 8 and 9.
 * A double started for a test takes the same ids, so one NetBox serves both.
 */
export function kindTemplateIds(): { prefix: number; site: number; approval: number } {
  let raw: string | undefined;
  try {
    raw = stackFact('UNICOP_AWX_TEMPLATE_IDS');
  } catch {
    return { prefix: 7, site: 8, approval: 9 };
  }
  const ids = JSON.parse(raw) as Record<string, { id: number }>;
  const id = (name: string) => {
    const found = ids[name]?.id;
    if (found === undefined) throw new Error(`UNICOP_AWX_TEMPLATE_IDS has no ${name}: scripts/stack up awx`);
    return found;
  };
  return {
    prefix: id(catalogueTemplates.prefix),
    site: id(catalogueTemplates.site),
    approval: id(catalogueTemplates.approval),
  };
}

/** What a test may change on real AWX's templates for its duration (put back by stop()). */
export interface RealAwxTweaks {
  /** unicop-site stops prompting for variables: AWX then drops them (ignored_fields). */
  siteIgnoresVariables?: boolean;
  /** The approval gate's timeout in seconds (AWX expires the approval after it). */
  approvalTimeoutSeconds?: number;
}

interface Unicop {
  root?: string;
  run_id?: string;
}

function unicopOf(extraVars: unknown): Unicop {
  try {
    const vars = typeof extraVars === 'string' ? JSON.parse(extraVars) : extraVars;
    return (vars as { unicop?: Unicop })?.unicop ?? {};
  } catch {
    return {};
  }
}

/** The stack's real AWX, with the workers' token; jobs() sees what was launched from now on. */
export async function takeRealAwx(tweaks: RealAwxTweaks = {}): Promise<AwxUnderTest> {
  const url = stackFact('UNICOP_AWX_REAL_URL');
  const token = resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env);
  // AWX stamps `created` with its own clock (the same machine); a little slack for rounding.
  const since = new Date(Date.now() - 2_000).toISOString();
  const get = async <T>(path: string, auth = `Bearer ${token}`): Promise<T> => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: auth } });
    if (!res.ok) throw new Error(`GET ${path}: AWX answered ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  type Page = {
    next: string | null;
    results: {
      id: number;
      type: string;
      status: string;
      started: string | null;
      finished: string | null;
      extra_vars: string;
      job_template?: number | null;
      workflow_job_template?: number | null;
    }[];
  };
  const list = async (kind: 'jobs' | 'workflow_jobs') => {
    const out: AwxJobRecord[] = [];
    for (let page = 1; ; page++) {
      const answer = await get<Page>(
        `/api/v2/${kind}/?created__gte=${encodeURIComponent(since)}&order_by=id&page_size=200&page=${page}`,
      );
      for (const j of answer.results) {
        const unicop = unicopOf(j.extra_vars);
        out.push({
          id: j.id,
          type: kind === 'jobs' ? 'job' : 'workflow_job',
          template: (kind === 'jobs' ? j.job_template : j.workflow_job_template) ?? null,
          root: unicop.root ?? null,
          run_id: unicop.run_id ?? null,
          status: j.status,
          started: j.started,
          finished: j.finished,
        });
      }
      if (!answer.next) return out;
    }
  };
  const jobs = async () => {
    const [plain, workflows] = await Promise.all([list('jobs'), list('workflow_jobs')]);
    return [...plain, ...workflows].sort((a, b) => a.id - b.id);
  };

  const restores = await applyRealTweaks(url, get, tweaks);
  return {
    kind: 'real',
    url,
    token,
    client: new AwxClient({ baseUrl: url, token, confirmDelayMs: 200, timeoutMs: 30_000 }),
    jobs,
    jobsOf: async (rootKey) => (await jobs()).filter((j) => j.root === rootKey),
    stop: async () => {
      for (const restore of restores.reverse()) await restore();
    },
  };
}

/**
 * Changes real AWX's catalogue templates as the tweaks ask (with the stack's admin account), and
 * returns how to put each back. The files run one at a time (vitest.config.ts), so no other test
 * sees the change; a run cut short leaves it for `scripts/stack up awx`, whose bootstrap repairs drift.
 */
async function applyRealTweaks(
  url: string,
  get: <T>(path: string, auth?: string) => Promise<T>,
  tweaks: RealAwxTweaks,
): Promise<(() => Promise<void>)[]> {
  if (tweaks.siteIgnoresVariables === undefined && tweaks.approvalTimeoutSeconds === undefined) return [];
  const password = (await readFile(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8')).trim();
  const admin = basicAuth('admin', password);
  const patch = async (path: string, body: Record<string, unknown>) => {
    const res = await fetch(`${url}${path}`, {
      method: 'PATCH',
      headers: { authorization: admin, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`PATCH ${path}: AWX answered ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  /** Sets field to value at path; the returned function puts the old value back. */
  const change = async (path: string, field: string, value: unknown) => {
    const before = (await get<Record<string, unknown>>(path, admin))[field];
    await patch(path, { [field]: value });
    return async () => {
      await patch(path, { [field]: before });
    };
  };

  const ids = kindTemplateIds();
  const restores: (() => Promise<void>)[] = [];
  if (tweaks.siteIgnoresVariables) {
    restores.push(await change(`/api/v2/job_templates/${ids.site}/`, 'ask_variables_on_launch', false));
  }
  if (tweaks.approvalTimeoutSeconds !== undefined) {
    const nodes = await get<{
      results: { summary_fields: { unified_job_template?: { id: number; unified_job_type: string } } }[];
    }>(`/api/v2/workflow_job_templates/${ids.approval}/workflow_nodes/`, admin);
    const gate = nodes.results
      .map((n) => n.summary_fields.unified_job_template)
      .find((t) => t?.unified_job_type === 'workflow_approval');
    if (!gate) throw new Error(`workflow job template ${ids.approval} has no approval node`);
    restores.push(
      await change(
        `/api/v2/workflow_approval_templates/${gate.id}/`,
        'timeout',
        tweaks.approvalTimeoutSeconds,
      ),
    );
  }
  return restores;
}

/** An AWX double (see test/awx-double) presented as an AwxUnderTest. */
export function asAwxUnderTest(double: TestDouble): AwxUnderTest {
  const jobs = async () =>
    (await double.doubleJobs())
      .filter(
        (j): j is DoubleJobRecord & { type: 'job' | 'workflow_job' } =>
          j.type === 'job' || j.type === 'workflow_job',
      )
      .map((j) => ({
        id: j.id,
        type: j.type,
        template: j.template,
        root: j.root,
        run_id: j.run_id,
        status: j.status,
        started: j.started,
        finished: j.finished,
      }))
      .sort((a, b) => a.id - b.id);
  return {
    kind: 'double',
    url: double.url,
    token: double.token,
    client: double.client,
    double,
    jobs,
    jobsOf: async (rootKey) => (await jobs()).filter((j) => j.root === rootKey),
    stop: () => double.stop(),
  };
}

export { startTestDouble };
