import seedrandom from 'seedrandom';

/** A seeded uniform [0, 1) source: the same seed gives the same sequence (simulator runs, demo data, fixtures). */
export function createSeededRandom(seed: number): () => number {
  return seedrandom(String(seed));
}
