import { describe, expect, it } from 'vitest';
import { withDeferredDateTimeFormats } from './deferred-date-time-format';

const OPTIONS: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
  day: '2-digit',
  month: '2-digit',
  timeZone: 'UTC',
};

describe('withDeferredDateTimeFormats', () => {
  it('should return what the load returns and restore the global afterwards', () => {
    const Real = Intl.DateTimeFormat;
    let during: unknown;
    const result = withDeferredDateTimeFormats(() => {
      during = Intl.DateTimeFormat;
      return 42;
    });
    expect(result).toBe(42);
    expect(during).not.toBe(Real);
    expect(Intl.DateTimeFormat).toBe(Real);
  });

  it('should restore the global when the load throws', () => {
    const Real = Intl.DateTimeFormat;
    expect(() =>
      withDeferredDateTimeFormats(() => {
        throw new Error('load failed');
      }),
    ).toThrow('load failed');
    expect(Intl.DateTimeFormat).toBe(Real);
  });

  it('should give formatters that format, resolve and split as the real ones', () => {
    const deferred = withDeferredDateTimeFormats(() => new Intl.DateTimeFormat('en-US', OPTIONS));
    const real = new Intl.DateTimeFormat('en-US', OPTIONS);
    const at = Date.UTC(2024, 1, 29, 13, 4, 5);
    expect(deferred).toBeInstanceOf(Intl.DateTimeFormat);
    expect(deferred.format(at)).toBe(real.format(at));
    expect(deferred.formatToParts(at)).toEqual(real.formatToParts(at));
    expect(deferred.resolvedOptions()).toEqual(real.resolvedOptions());
  });

  it('should leave formatters created after the load untouched', () => {
    withDeferredDateTimeFormats(() => undefined);
    const after = new Intl.DateTimeFormat('en-US', OPTIONS);
    expect(Object.getPrototypeOf(after)).toBe(Intl.DateTimeFormat.prototype);
    expect(after.format(0)).toBe('01/01/1970, 12:00:00 AM');
  });
});
