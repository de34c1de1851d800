/**
 * core/secrets/token-resend.ts, the rule the NetBox transport and the AWX client share for a
 * request refused for its token (decision 0056), without services: sent once more only after a 401
 * or 403 and only with a token that has a new value (replaced meanwhile, or read again now), once at
 * the most, the refused answer released first; a failing re-read is "not replaced". The clients
 * themselves against the real NetBox, AWX and OpenBao: test/secrets/token-rotation.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { sendWithFreshToken } from '../../core/secrets/token-resend.js';

interface Sent {
  token: string;
  resend: boolean;
}

/** A service answering each send with the next status, recording what was sent. */
function service(...statuses: number[]) {
  const sent: Sent[] = [];
  const discarded: number[] = [];
  return {
    sent,
    discarded,
    send: async (token: string, resend: boolean) => {
      sent.push({ token, resend });
      return { status: statuses[sent.length - 1] ?? 500 };
    },
    discard: async (refused: { status: number }) => {
      discarded.push(refused.status);
    },
  };
}

describe('sendWithFreshToken', () => {
  it('an answer other than 401/403 is the answer: one send, the token never read again', async () => {
    for (const status of [200, 404, 500]) {
      const s = service(status);
      let reread = 0;
      const answer = await sendWithFreshToken(
        { token: () => 'old', onUnauthorized: async () => ++reread > 0 },
        s.send,
        s.discard,
      );
      expect(answer.status).toBe(status);
      expect(s.sent).toEqual([{ token: 'old', resend: false }]);
      expect(reread).toBe(0);
    }
  });

  it.each([401, 403])(
    'refused %i and the re-read finds a new token: sent once more with it, the refused answer released',
    async (status) => {
      const s = service(status, 200);
      let current = 'old';
      const answer = await sendWithFreshToken(
        {
          token: () => current,
          onUnauthorized: async () => {
            current = 'new';
            return true;
          },
        },
        s.send,
        s.discard,
      );
      expect(answer.status).toBe(200);
      expect(s.sent).toEqual([
        { token: 'old', resend: false },
        { token: 'new', resend: true },
      ]);
      expect(s.discarded).toEqual([status]);
    },
  );

  it('refused, and the scheduled re-read replaced the token meanwhile: sent again without asking Vault', async () => {
    const s = service(401, 200);
    let current = 'old';
    let asked = 0;
    const answer = await sendWithFreshToken(
      {
        token: () => current,
        onUnauthorized: async () => {
          asked++;
          return false;
        },
      },
      async (token, resend) => {
        if (!resend) current = 'replaced'; // the scheduled re-read lands while the request is out
        return s.send(token, resend);
      },
    );
    expect(answer.status).toBe(200);
    expect(s.sent.map((x) => x.token)).toEqual(['old', 'replaced']);
    expect(asked).toBe(0);
  });

  it('refused and the token unchanged (the re-read found the same, or failed): the refusal is the answer, sent once', async () => {
    for (const onUnauthorized of [async () => false, async () => Promise.reject(new Error('Vault down'))]) {
      const s = service(401, 200);
      const answer = await sendWithFreshToken({ token: () => 'old', onUnauthorized }, s.send, s.discard);
      expect(answer.status).toBe(401);
      expect(s.sent).toHaveLength(1);
      expect(s.discarded).toEqual([]);
    }
  });

  it('refused again with the new token: that refusal is the answer — once more at the most', async () => {
    const s = service(401, 403, 200);
    let n = 0;
    const answer = await sendWithFreshToken(
      { token: () => `token-${n}`, onUnauthorized: async () => ++n > 0 },
      s.send,
      s.discard,
    );
    expect(answer.status).toBe(403);
    expect(s.sent).toEqual([
      { token: 'token-0', resend: false },
      { token: 'token-1', resend: true },
    ]);
  });

  it('without onUnauthorized a refusal is the caller’s, even when the token changed meanwhile', async () => {
    const s = service(401, 200);
    let current = 'old';
    const answer = await sendWithFreshToken({ token: () => current }, async (token, resend) => {
      current = 'new';
      return s.send(token, resend);
    });
    expect(answer.status).toBe(401);
    expect(s.sent).toHaveLength(1);
  });
});
