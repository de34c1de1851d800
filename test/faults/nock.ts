/**
 * nock for the HTTP faults the real services cannot produce on demand (decision 0012). Requests
 * nock has no interceptor for go to the real services on 127.0.0.1 (NetBox, the AWX double);
 * anything else is refused, so a fault test never reaches out of the machine.
 *
 * nock 15 intercepts both node:http (axios, the NetBox client) and fetch (openapi-fetch, the AWX
 * client) through @mswjs/interceptors. That package (0.44) calls `Promise.withResolvers`, which
 * Node 22 has and Node 20 (this project's minimum) lacks: the standard behaviour is supplied here
 * when missing, before any request is made.
 */
import nock from 'nock';

type Resolvers<T> = { promise: Promise<T>; resolve: (value: T) => void; reject: (reason?: unknown) => void };

export function startNock(): typeof nock {
  const promise = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
  promise.withResolvers ??= <T>() => {
    let resolve!: (value: T) => void;
    let reject!: (reason?: unknown) => void;
    const created = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise: created, resolve, reject };
  };
  if (!nock.isActive()) nock.activate();
  nock.disableNetConnect();
  nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);
  return nock;
}

export function stopNock(): void {
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
}

/** A reply that never comes: the server took the request and hangs (the client's timeout decides). */
export const never = (): Promise<never> => new Promise<never>(() => undefined);
