/**
 * A run waiting on an approval, as the admin API's GET /approvals lists it (bridge/admin/approvals.ts;
 * `unicop approvals` prints it): `awx` — its AWX workflow waits on an approval node (built from AWX's
 * pending approvals, docs/decisions/0057); `gate` — UNICOP's blast-radius gate holds it before launch
 * (docs/decisions/0065: no AWX job yet, the diff that held it in `blastRadius`).
 */
export interface WaitingApproval {
  kind: 'awx' | 'gate';
  runId: string;
  rootKey: string;
  /** The AWX workflow job and its approval (kind awx); null for a gate approval. */
  awxWorkflowJobId: number | null;
  approvalId: number | null;
  approvalName: string;
  requestedAt: string | null;
  /** When AWX lets the approval expire (its node's timeout); null without one (and for a gate approval). */
  expiresAt: string | null;
  /** What held the run (kind gate): counts against the baseline run, up to 20 member keys. */
  blastRadius?: BlastRadiusSummary | null;
}

/** The diff that held a run (the run's `blast_radius`, written by the reconciler). */
export interface BlastRadiusSummary {
  baseline_run_id: string;
  added: number;
  removed: number;
  changed: number;
  members: number;
  share: number;
  limit: { max_changed_members?: number; max_changed_share?: number };
  keys: string[];
}
