type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * `fn` over `items`, yielded in the order of `items`, with up to `limit` calls running ahead of
 * the consumer: a listing streams its items one by one without paying each one's latency in
 * turn. The first failure is thrown when its turn comes. A consumer that stops early leaves at
 * most `limit` calls to finish; their outcomes are dropped.
 */
export async function* mapAhead<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const running: Promise<Settled<R>>[] = [];
  let next = 0;
  const start = (): void => {
    const item = items[next++] as T;
    running.push(
      Promise.resolve()
        .then(() => fn(item))
        .then(
          (value): Settled<R> => ({ ok: true, value }),
          (error: unknown): Settled<R> => ({ ok: false, error }),
        ),
    );
  };
  while (next < items.length && running.length < Math.max(1, limit)) start();
  for (let head = running.shift(); head !== undefined; head = running.shift()) {
    const settled = await head;
    if (next < items.length) start();
    if (!settled.ok) throw settled.error;
    yield settled.value;
  }
}
