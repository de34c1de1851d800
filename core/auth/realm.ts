/**
 * The realm as the CLI's sign-ins see it (decision 0051): its OIDC discovery document, fetched once
 * per process and kept (`RealmEndpoints`), and one form POST to its endpoints (`postForm`) — shared
 * by the client credentials grant, the device flow, the refresh and the revocation at logout. A
 * realm that cannot be reached or answers without an endpoint is a `SignInError` naming what was
 * missing; a form POST answers with its status and JSON body (the caller reads Keycloak's `error`).
 */
export class SignInError extends Error {
  override readonly name = 'SignInError';
}

/** The endpoints of the realm's discovery document UNICOP uses (OpenID Connect Discovery 1.0, RFC 8414). */
export interface RealmDiscovery {
  token_endpoint: string;
  device_authorization_endpoint?: string;
  /** RFC 7009 token revocation; Keycloak publishes it, another realm may not. */
  revocation_endpoint?: string;
}

const defaultTimeoutMs = 10_000;

function unreachable(where: string, error: unknown): SignInError {
  const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
  return new SignInError(`cannot reach Keycloak at ${where}: ${cause}`, { cause: error });
}

export class RealmEndpoints {
  private held: Promise<RealmDiscovery> | null = null;

  constructor(
    readonly issuer: string,
    private readonly timeoutMs = defaultTimeoutMs,
  ) {}

  /** The discovery document, fetched on first use and kept; a failed fetch is tried again next time. */
  discovery(): Promise<RealmDiscovery> {
    this.held ??= this.fetchDiscovery().catch((error: unknown) => {
      this.held = null;
      throw error;
    });
    return this.held;
  }

  private async fetchDiscovery(): Promise<RealmDiscovery> {
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw unreachable(this.issuer, error);
    }
    const doc = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof doc.token_endpoint !== 'string') {
      throw new SignInError(`no OIDC discovery document at ${url} (${res.status})`);
    }
    const optional = (name: string) => (typeof doc[name] === 'string' ? { [name]: doc[name] as string } : {});
    return {
      token_endpoint: doc.token_endpoint,
      ...optional('device_authorization_endpoint'),
      ...optional('revocation_endpoint'),
    };
  }
}

/** One `application/x-www-form-urlencoded` POST to a realm endpoint: its status and JSON body ({} if none). */
export async function postForm(
  url: string,
  form: Record<string, string>,
  timeoutMs = defaultTimeoutMs,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw unreachable(url, error);
  }
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}
