/**
 * The roles of UNICOP's realm (deploy/keycloak/unicop-realm.json: a group per role, composites so
 * that an operator and an approver are viewers too) and the one rule for them: `admin` may do
 * everything. Which endpoint needs which role is declared where the routes are
 * (bridge/admin/admin-api.ts, workers/main.ts) and tabled in docs/decisions/0051.
 */
export const roleNames = ['viewer', 'operator', 'approver', 'admin'] as const;
export type Role = (typeof roleNames)[number];

/** Whether roles that hold `held` may act where `required` is needed. */
export function grants(held: ReadonlySet<Role>, required: Role): boolean {
  return held.has('admin') || held.has(required);
}
