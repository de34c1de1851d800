/**
 * The admin API's freeze and resume body (bridge/admin/admin-api.ts `overrideBody`): a reason over 500
 * characters is refused naming the field — NetBox would refuse it (a root's freeze takes 500; the
 * global banner's mirror 1000), and the freeze would then not show there. Without services: the body
 * check the handler runs (parseJsonBody → validateBody) before anything is appended; test/bridge/admin
 * covers the rest of the route on the real stack (its body limit is too small for this case).
 */
import { describe, expect, it } from 'vitest';
import { overrideBody } from '../../bridge/admin/admin-api.js';
import { validateBody } from '../../bridge/http/body.js';
import { ValidationError } from '../../bridge/http/errors.js';

describe('freeze/resume body', () => {
  it('refuses a reason over 500 characters, naming the field; 500 is taken', () => {
    expect(validateBody({ reason: 'r'.repeat(500) }, overrideBody).reason).toHaveLength(500);
    let refused: unknown;
    try {
      validateBody({ reason: 'r'.repeat(501) }, overrideBody);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({
      statusCode: 422,
      reason: 'invalid_body',
      details: { issues: [{ field: 'reason', message: 'at most 500 characters' }] },
    });
  });
});
