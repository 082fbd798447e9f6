import { describe, expect, it } from 'vitest';
import { redact } from './redact';

describe('redact', () => {
  it('should replace every occurrence of each secret when a diagnostic line contains them', () => {
    expect(redact('a CTF{x1} b CTF{x1} c hunter22', ['CTF{x1}', 'hunter22'])).toBe(
      'a [REDACTED] b [REDACTED] c [REDACTED]',
    );
  });

  it('should redact the longer secret whole when one secret contains another', () => {
    expect(redact('see http://CTF{abcd}.invalid', ['CTF{abcd}', 'http://CTF{abcd}.invalid'])).toBe(
      'see [REDACTED]',
    );
  });

  it('should keep values shorter than four characters when they are given as secrets', () => {
    expect(redact('a b c', ['a', ''])).toBe('a b c');
  });
});
