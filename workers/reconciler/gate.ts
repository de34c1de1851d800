/**
 * The validation gate before launch (docs/decisions/0060): an apply run's snapshot is checked against
 * its kind's JSON Schema (policy `schema`, draft 2020-12, checked itself by the plugin at load) before
 * anything reaches AWX. A snapshot the schema refuses ends the run `failed`, class `invalid_snapshot`,
 * naming the failing paths in its summary (so in NetBox's run page and the root's journal) and in the
 * `run.failed` audit event — and no AWX job is launched. A check run is not gated: it changes nothing.
 *
 * Formats are annotations, not assertions (2020-12's default, and what the plugin's check_schema
 * assumes): a `format` never refuses a snapshot. Compiled validators are kept per schema text, so a
 * kind's schema is compiled once per process, each on its own ajv instance (two schemas may share an
 * `$id`).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { decide } from './decide.js';
import { type ActiveRun, type Leased, policyOf, viewOf } from './scope.js';
import type { GateVerdict, RunEnd, SchemaFrom, SchemaProblem } from './steps.js';

const ajvOptions = { allErrors: true, strict: false, validateFormats: false } as const;
const compiled = new Map<string, ValidateFunction>();

/** What the kind's schema says of the snapshot: no schema, passes, refuses (with its problems), or unusable. */
export function checkSnapshot(schema: unknown, snapshot: unknown): GateVerdict {
  if (schema === null || schema === undefined) return { kind: 'pass' };
  let validate: ValidateFunction;
  try {
    const text = JSON.stringify(schema);
    // A fresh instance per schema text: one shared instance registers each schema's `$id`, and a
    // second, different schema with the same `$id` (a kind's schema edited while the workers run, an
    // override that copies it) would throw "already exists" and fail every run of the root (review B #3).
    validate = compiled.get(text) ?? new Ajv2020(ajvOptions).compile(schema as object);
    compiled.set(text, validate);
  } catch (error) {
    return { kind: 'unusable', reason: (error as Error).message };
  }
  if (validate(snapshot)) return { kind: 'pass' };
  const problems: SchemaProblem[] = (validate.errors ?? []).map((e) => ({
    path: e.instancePath || '/',
    message: e.message ?? e.keyword,
  }));
  return { kind: 'invalid', problems };
}

/** Where the root's schema came from: its policy's `overridden` says when its override set it (0068). */
function schemaFrom(root: Leased['root']): SchemaFrom {
  const overridden = policyOf(root).overridden as Record<string, unknown> | undefined;
  const from = overridden?.schema;
  return from === 'override' || from === 'kind+override' ? from : 'kind';
}

/**
 * Gates an apply run about to launch: null when it may launch, else how it ends (the caller writes
 * that end through finish(): terminal write, journal, outcome and audit). The problems go in the
 * run's log too, with the whole list (bounded) in the line's meta.
 */
export function gateRun(scope: Leased, run: ActiveRun, snapshot: unknown): RunEnd | null {
  if (run.mode === 'check') return null;
  const verdict = checkSnapshot(policyOf(scope.root).schema, snapshot);
  const step = decide(
    viewOf(run, run.cause),
    {
      kind: 'gate',
      rootKind: scope.root.kind,
      verdict,
      schemaFrom: schemaFrom(scope.root),
      rootKey: scope.root.key,
    },
    scope.settings,
  );
  if (step.kind === 'gate-passed') return null;
  if (step.kind !== 'end') throw new Error(`a gated run cannot ${step.kind}`);
  const at = scope.clock.now();
  for (const line of step.lines) run.log.add(at, line.level, line.message, line.meta);
  return step.end;
}
