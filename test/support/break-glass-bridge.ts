/**
 * A real bridge for admin-API tests where the shared admin token (break-glass, on here) stands in for a
 * person (decision 0051; test/auth/ covers OIDC), talking to the stack's NetBox with its token.
 */
import { type RunningBridge, startBridge } from './bridge.js';
import { stack } from './stack.js';

export function startBreakGlassBridge(adminToken: string): Promise<RunningBridge> {
  return startBridge({
    UNICOP_ADMIN_TOKEN: adminToken,
    UNICOP_ADMIN_BREAK_GLASS: 'true',
    UNICOP_NETBOX_TOKEN: stack.netboxToken(),
  });
}
