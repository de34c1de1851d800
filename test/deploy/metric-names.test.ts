/**
 * deploy/prometheus/alerts.yaml and deploy/grafana/unicop-dashboard.json name only metrics the code
 * registers (workers/metrics.ts, bridge/metrics.ts): a renamed metric fails here, not silently in a
 * dashboard. A histogram's _bucket, _sum and _count series count as its name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createBridgeMetrics } from '../../bridge/metrics.js';
import { repoRoot } from '../../core/config.js';
import { createWorkerMetrics } from '../../workers/metrics.js';

const registered = new Set(
  [createWorkerMetrics().registry, createBridgeMetrics().registry].flatMap((r) =>
    r.getMetricsAsArray().map((m) => m.name),
  ),
);

/** The unicop_ metric names an expression uses, histogram suffixes dropped. */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bunicop_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

const alerts = parse(readFileSync(join(repoRoot, 'deploy/prometheus/alerts.yaml'), 'utf8')) as {
  groups: { rules: { alert: string; expr: string }[] }[];
};
const dashboard = JSON.parse(
  readFileSync(join(repoRoot, 'deploy/grafana/unicop-dashboard.json'), 'utf8'),
) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

describe('metric names in the alert rules and the dashboard', () => {
  const rules = alerts.groups.flatMap((g) => g.rules);
  it.each(rules.map((r) => [r.alert, r.expr] as const))('alert %s uses registered metrics', (_name, expr) => {
    const names = metricNames(expr);
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !registered.has(n))).toEqual([]);
  });
  it.each(dashboard.panels.map((p) => [p.title, p.targets.map((t) => t.expr).join('\n')] as const))(
    'panel "%s" uses registered metrics',
    (_title, exprs) => {
      const names = metricNames(exprs);
      expect(names.length).toBeGreaterThan(0);
      expect(names.filter((n) => !registered.has(n))).toEqual([]);
    },
  );
});
