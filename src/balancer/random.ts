import type { RandomSource } from './types.js'

/**
 * mulberry32: a tiny 32-bit PRNG, good enough to spread tie-breaks and fully
 * reproducible from its seed. Not for anything security-related; production wiring
 * passes `Math.random` instead.
 */
export function seededRandom (seed: number): RandomSource {
  // `>>> 0` keeps the state an unsigned 32-bit integer whatever number the caller passes.
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    // Dividing by 2^32 maps the 32-bit output onto [0, 1), never reaching 1.
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
