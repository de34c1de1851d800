/**
 * A run waiting on an AWX approval, as the admin API's GET /approvals lists it (bridge/admin/
 * approvals.ts builds it from AWX's pending approvals; `unicop approvals` prints it).
 */
export interface WaitingApproval {
  runId: string;
  rootKey: string;
  awxWorkflowJobId: number;
  approvalId: number;
  approvalName: string;
  requestedAt: string | null;
  /** When AWX lets the approval expire (its node's timeout); null without one. */
  expiresAt: string | null;
}
