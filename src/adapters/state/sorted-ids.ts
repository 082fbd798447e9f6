/**
 * A set of ids kept in sorted order, so that handing out a sorted copy costs a copy and not a
 * sort: the pool of a challenge is read twice per claim and changes by one id at a time.
 */
export class SortedIds {
  private readonly ids: string[];

  constructor(ids: Iterable<string> = []) {
    this.ids = [...new Set(ids)].sort();
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: string): boolean {
    const at = this.indexOf(id);
    return this.ids[at] === id;
  }

  add(id: string): void {
    const at = this.indexOf(id);
    if (this.ids[at] !== id) this.ids.splice(at, 0, id);
  }

  /** True when `id` was there. */
  delete(id: string): boolean {
    const at = this.indexOf(id);
    if (this.ids[at] !== id) return false;
    this.ids.splice(at, 1);
    return true;
  }

  /** A sorted copy. */
  toArray(): string[] {
    return this.ids.slice();
  }

  /** Where `id` is, or where it would go (the first index whose id is not below it). */
  private indexOf(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.ids[mid] as string) < id) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
