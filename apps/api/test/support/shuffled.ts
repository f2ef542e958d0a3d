/** A shuffle of `items` seeded by `seed` (mulberry32), so a failing order can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return shuffleWith(items, random);
}

/** A fresh random shuffle of `items` (Math.random), for tests that want a new order each run. */
export function shuffle<T>(items: readonly T[]): T[] {
  return shuffleWith(items, Math.random);
}

/** Fisher–Yates over a copy of `items`, drawing from `random` (a number in [0, 1)). */
function shuffleWith<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
