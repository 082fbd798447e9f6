import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../shared/errors';
import { checkFromGrpc, checkFromJson, checkResultToJson } from './flag.wire';

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.field;
    throw err;
  }
  return undefined;
};

describe('flag wire', () => {
  it('should read JSON names and proto names alike', () => {
    const want = { challengeId: 'c', sourceId: 's', flag: 'CTF{x}' };
    expect(checkFromJson(want)).toEqual(want);
    expect(checkFromJson({ challenge_id: 'c', source_id: 's', flag: 'CTF{x}' })).toEqual(want);
  });

  it('should name the field when an id or the flag is missing, empty, of another type or too long', () => {
    expect(fieldOf(() => checkFromJson({ sourceId: 's', flag: 'f' }))).toBe('challengeId');
    expect(fieldOf(() => checkFromJson({ challengeId: 'c', flag: 'f' }))).toBe('sourceId');
    expect(fieldOf(() => checkFromJson({ challengeId: 'c', sourceId: 's' }))).toBe('flag');
    expect(fieldOf(() => checkFromJson({ challengeId: 'c', sourceId: 's', flag: 7 }))).toBe('flag');
    const long = { challengeId: 'c', sourceId: 's', flag: 'é'.repeat(513) };
    expect(fieldOf(() => checkFromJson(long))).toBe('flag');
    expect(fieldOf(() => checkFromGrpc(long))).toBe('flag');
    expect(fieldOf(() => checkFromGrpc({ ...long, flag: 'x'.repeat(1024) }))).toBeUndefined();
    expect(fieldOf(() => checkFromJson([]))).toBe('body');
  });

  it('should never echo the flag in a refusal', () => {
    const secret = `CTF{${'s'.repeat(2000)}}`;
    const refusal = (() => {
      try {
        checkFromJson({ challengeId: 'c', sourceId: 's', flag: secret });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(refusal).toBeInstanceOf(InvalidArgumentError);
    expect((refusal as InvalidArgumentError).message).not.toContain('sss');
  });

  it('should write valid always and sharedFrom only when set', () => {
    expect(checkResultToJson({ valid: false })).toEqual({ valid: false });
    expect(checkResultToJson({ valid: false, sharedFrom: 'b' })).toEqual({
      valid: false,
      sharedFrom: 'b',
    });
  });
});
