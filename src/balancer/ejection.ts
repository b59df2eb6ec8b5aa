import type { Clock } from './types.js'

// Mutable on purpose: an entry is updated in place on every failure, and the query
// path (`isEjected`, once per request per target) only reads it, so it never allocates.
interface Entry {
  generation: string
  /** Ejections in a row without a success in between; drives the backoff exponent. */
  failures: number
  ejectedUntil: number
  lastFailureAt: number
  /** Drained by an operator: no new requests unless nothing else can be tried; never times out. */
  drained: boolean
}

export interface EjectionsOptions {
  /** First ejection, in ms (default 1000). */
  readonly baseMs?: number | undefined
  /** Longest ejection, in ms (default 30000). */
  readonly maxMs?: number | undefined
  readonly clock: Clock
}

// 2^52 is still an exact, finite double: base * 2^exponent can never overflow to
// Infinity however many failures pile up, and the cap below then applies as usual.
const MAX_EXPONENT = 52

/**
 * Targets set aside locally after failures (Envoy outlier detection, Curator's
 * `noteError()` filter). An ejection lasts base * 2^(n-1) ms capped at max, where n
 * counts ejections since the target last answered; a success or a re-created znode
 * (new generation) forgets the target's history.
 */
export class Ejections {
  readonly #baseMs: number
  readonly #maxMs: number
  readonly #clock: Clock
  readonly #entries = new Map<string, Entry>()

  constructor ({ baseMs = 1000, maxMs = 30_000, clock }: EjectionsOptions) {
    // Config validation should have caught these already; failing loudly here beats a
    // NaN ejection that silently never ends (or never starts).
    if (!Number.isFinite(baseMs) || baseMs <= 0) {
      throw new RangeError(`Ejections: baseMs must be a positive finite number, got ${baseMs}`)
    }
    if (!Number.isFinite(maxMs) || maxMs < baseMs) {
      throw new RangeError(`Ejections: maxMs must be a finite number >= baseMs (${baseMs}), got ${maxMs}`)
    }
    this.#baseMs = baseMs
    this.#maxMs = maxMs
    this.#clock = clock
  }

  /** Records a failed attempt against `name` and ejects it (or keeps it ejected). */
  noteFailure (name: string, generation: string): void {
    const now = this.#clock()
    let entry = this.#entries.get(name)
    if (entry === undefined || entry.generation !== generation) {
      entry = this.#fresh(name, generation, now)
    }
    entry.lastFailureAt = now
    // Requests sent before the ejection began fail together (a SIGKILLed replica resets
    // every open connection at once). Counting each of them would jump straight to maxMs
    // after one incident, so only a failure after the ejection has lapsed, i.e. a
    // probe, doubles the backoff; the others just refresh lastFailureAt.
    if (now < entry.ejectedUntil) return
    entry.failures++
    const exponent = Math.min(entry.failures - 1, MAX_EXPONENT)
    entry.ejectedUntil = now + Math.min(this.#maxMs, this.#baseMs * 2 ** exponent)
  }

  /** The target answered: it is healthy again and its backoff starts over (a drain stays). */
  noteSuccess (name: string): void {
    const entry = this.#entries.get(name)
    if (entry === undefined) return
    if (!entry.drained) { this.#entries.delete(name); return }
    entry.failures = 0
    entry.ejectedUntil = 0
    entry.lastFailureAt = Number.NEGATIVE_INFINITY
  }

  /**
   * An operator's ejection (the admin API): set aside for `durationMs` as if it had failed now,
   * without raising its backoff; it comes back early if it answers a last-resort attempt.
   */
  eject (name: string, generation: string, durationMs: number): void {
    const now = this.#clock()
    const entry = this.#current(name, generation, now)
    entry.lastFailureAt = now
    entry.ejectedUntil = Math.max(entry.ejectedUntil, now + durationMs)
  }

  /**
   * An operator's drain (the admin API): no new requests to this registration of the target,
   * except as a last resort when nothing else can be tried; `false` undoes it. A re-created
   * znode (new generation) is a new registration and starts undrained.
   */
  drain (name: string, generation: string, on: boolean): void {
    const now = this.#clock()
    if (!on) {
      const entry = this.#entries.get(name)
      if (entry === undefined) return
      entry.drained = false
      if (entry.lastFailureAt === Number.NEGATIVE_INFINITY) this.#entries.delete(name)
      return
    }
    this.#current(name, generation, now).drained = true
  }

  isDrained (name: string, generation: string): boolean {
    const entry = this.#entries.get(name)
    return entry !== undefined && entry.generation === generation && entry.drained
  }

  /**
   * Failed since it last answered: ejected now, or its ejection lapsed and no request has
   * probed it yet. What the proxy tells others about a target (`zkproxy status`).
   */
  isFailing (name: string, generation: string): boolean {
    const entry = this.#entries.get(name)
    return entry !== undefined && entry.generation === generation && entry.lastFailureAt !== Number.NEGATIVE_INFINITY
  }

  #current (name: string, generation: string, now: number): Entry {
    const entry = this.#entries.get(name)
    return entry !== undefined && entry.generation === generation ? entry : this.#fresh(name, generation, now)
  }

  #fresh (name: string, generation: string, now: number): Entry {
    // A drain-only entry has no failure: -Infinity sorts it first among last resorts.
    const entry: Entry = { generation, failures: 0, ejectedUntil: now, lastFailureAt: Number.NEGATIVE_INFINITY, drained: false }
    this.#entries.set(name, entry)
    return entry
  }

  /**
   * Hot path: called per request per target. A generation other than the recorded one
   * means the znode was re-created (a restarted replica), so the old record is dropped.
   */
  isEjected (name: string, generation: string): boolean {
    const entry = this.#entries.get(name)
    if (entry === undefined) return false
    if (entry.generation !== generation) {
      this.#entries.delete(name)
      return false
    }
    // A drained target is skipped like an ejected one: a last resort only.
    return entry.drained || this.#clock() < entry.ejectedUntil
  }

  /** When the current ejection ends (ms, same clock), or undefined when not ejected. */
  ejectedUntil (name: string): number | undefined {
    const entry = this.#entries.get(name)
    if (entry === undefined || this.#clock() >= entry.ejectedUntil) return undefined
    return entry.ejectedUntil
  }

  /**
   * The last failure since the target last answered, even once its ejection lapsed;
   * undefined after a success. Orders last-resort attempts (least recently failed first).
   */
  lastFailureAt (name: string): number | undefined {
    const at = this.#entries.get(name)?.lastFailureAt
    return at === Number.NEGATIVE_INFINITY ? undefined : at
  }

  /** The target left the registry: drop its record so the map cannot grow unbounded. */
  forget (name: string): void {
    this.#entries.delete(name)
  }

  /** Keeps only the records of targets still live (call on every new snapshot). */
  prune (liveNames: ReadonlySet<string>): void {
    // Deleting the current key while iterating a Map is well-defined in JavaScript.
    for (const name of this.#entries.keys()) {
      if (!liveNames.has(name)) this.#entries.delete(name)
    }
  }
}
