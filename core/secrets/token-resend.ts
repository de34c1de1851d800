/**
 * A request refused for its token, sent once more with the token's new value (decision 0056): the
 * one rule the NetBox transport (core/netbox/http.ts) and the AWX client (core/awx/client.ts) share.
 *
 * The token is read for every send. An answer 401 or 403 means the service refused the request at
 * the door — nothing was applied — so when the token has a new value since (the scheduled Vault
 * re-read replaced it meanwhile, or `onUnauthorized` read it again now and reports a change), the
 * request is sent once more with it. Once only: a second refusal is the caller's answer. Without
 * `onUnauthorized` the first answer is the caller's whatever it is.
 */

export interface RefreshableToken {
  /** The token's current value (read for every send; never logged). */
  token: () => string;
  /** On a 401 or 403: read the token again now; true when it has a new value. */
  onUnauthorized?: (() => Promise<boolean>) | undefined;
}

/**
 * `send(token, resend)` once with the current token and, when refused for it and the token has been
 * replaced since, once more (`resend` true) with the new one. `discard` releases the refused answer
 * (a fetch Response's body) before the second send.
 */
export async function sendWithFreshToken<Answer extends { status: number }>(
  source: RefreshableToken,
  send: (token: string, resend: boolean) => Promise<Answer>,
  discard?: (refused: Answer) => Promise<void>,
): Promise<Answer> {
  const sent = source.token();
  const answer = await send(sent, false);
  const refused = answer.status === 401 || answer.status === 403;
  if (!refused || !source.onUnauthorized) return answer;
  const replaced = source.token() !== sent || (await source.onUnauthorized().catch(() => false));
  if (!replaced) return answer;
  await discard?.(answer);
  return send(source.token(), true);
}
