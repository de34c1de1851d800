/** NetBox's REST API for tests, bound to the local stack (core/netbox/rest.ts). */
import { type NetboxMethod, netboxRest } from '../../core/netbox/rest.js';
import { stack } from './stack.js';

export { NetboxRequestError } from '../../core/netbox/rest.js';

export function netbox<T = Record<string, unknown>>(
  method: NetboxMethod,
  path: string,
  body?: unknown,
): Promise<T> {
  return netboxRest(stack.netboxUrl(), stack.netboxToken())<T>(method, path, body);
}
