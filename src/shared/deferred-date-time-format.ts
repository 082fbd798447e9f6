/**
 * Runs `load` with `Intl.DateTimeFormat` replaced by a constructor whose formatters build the
 * real one at their first use, then restores the global: only what `load` creates is deferred.
 *
 * A deferred formatter answers every property and method as the real one (methods bound to it)
 * and is an `instanceof Intl.DateTimeFormat`; it reads the default locale and time zone when it
 * is first used rather than when it was created.
 */
export function withDeferredDateTimeFormats<T>(load: () => T): T {
  const Real = Intl.DateTimeFormat;
  const Deferred = function (
    locales?: string | string[],
    options?: Intl.DateTimeFormatOptions,
  ): Intl.DateTimeFormat {
    let real: Intl.DateTimeFormat | undefined;
    const target = Object.create(Real.prototype) as Intl.DateTimeFormat;
    return new Proxy(target, {
      get(_target, key) {
        real ??= new Real(locales, options);
        const value: unknown = Reflect.get(real, key, real);
        return typeof value === 'function' ? (value as () => unknown).bind(real) : value;
      },
    });
  };
  Object.defineProperties(Deferred, {
    prototype: { value: Real.prototype },
    supportedLocalesOf: { value: Real.supportedLocalesOf.bind(Real) },
  });
  Intl.DateTimeFormat = Deferred as unknown as typeof Intl.DateTimeFormat;
  try {
    return load();
  } finally {
    Intl.DateTimeFormat = Real;
  }
}
