/**
 * The workers' `POST /sweep` check (workers/sweep-authorization.ts) with tokens of the stack's real
 * Keycloak: no token 401, a viewer 403, an operator and an admin let in; the shared token refused
 * while break-glass is off and, on, let in with an `admin.break_glass_used` audit event and a warn.
 */
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bearerCheckFrom } from '../../core/auth/bearer.js';
import { parseConfig } from '../../core/config.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { createLogger } from '../../core/logger.js';
import { authorizeSweep } from '../../workers/sweep-authorization.js';
import { keycloak, keycloakUsers, userToken } from '../support/keycloak.js';

const sharedToken = 'sweep-break-glass-token-0123456789abcdef';

function request(token: string | null): IncomingMessage {
  return {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as IncomingMessage;
}

function recorder() {
  const appended: EventLogMessage[] = [];
  const eventLog = { append: async (messages: EventLogMessage[]) => void appended.push(...messages) };
  const lines: string[] = [];
  const log = createLogger(
    'workers',
    'info',
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  return { appended, lines, deps: { eventLog: eventLog as unknown as EventLog, log } };
}

describe("workers' POST /sweep behind Keycloak", () => {
  it('no token 401, a viewer 403, an operator and an admin let in (break-glass off: the shared token 401)', async () => {
    const check = bearerCheckFrom(parseConfig({ ...keycloak.env(), UNICOP_ADMIN_TOKEN: sharedToken }));
    const { appended, deps } = recorder();
    expect(await authorizeSweep(request(null), { check, ...deps })).toMatchObject({
      status: 401,
      body: { reason: 'token_missing' },
    });
    const viewer = await userToken(keycloakUsers.viewer);
    expect(await authorizeSweep(request(viewer), { check, ...deps })).toMatchObject({
      status: 403,
      body: { reason: 'role_required' },
    });
    expect(
      await authorizeSweep(request(await userToken(keycloakUsers.operator)), { check, ...deps }),
    ).toBeNull();
    expect(
      await authorizeSweep(request(await userToken(keycloakUsers.admin)), { check, ...deps }),
    ).toBeNull();
    expect((await authorizeSweep(request(sharedToken), { check, ...deps }))?.status).toBe(401);
    expect(appended).toEqual([]);
  });

  it('break-glass on: the shared token is let in, audited as admin.break_glass_used and logged at warn', async () => {
    const check = bearerCheckFrom(
      parseConfig({ ...keycloak.env(), UNICOP_ADMIN_TOKEN: sharedToken, UNICOP_ADMIN_BREAK_GLASS: 'true' }),
    );
    const { appended, lines, deps } = recorder();
    expect(await authorizeSweep(request(sharedToken), { check, ...deps })).toBeNull();
    expect(appended).toHaveLength(1);
    expect(JSON.parse(String(appended[0]?.value)).data).toMatchObject({
      action: 'admin.break_glass_used',
      actor: 'break-glass',
      metadata: { route: 'POST /sweep' },
    });
    expect(
      lines.filter((l) => l.includes('break-glass token used') && l.includes('"level":40')),
    ).toHaveLength(1);
    expect(lines.join('')).not.toContain(sharedToken);
  });
});
