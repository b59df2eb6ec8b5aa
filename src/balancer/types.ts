// The balancer sees targets only through this shape: the registry builds it from a
// snapshot plus this proxy's own counters, so nothing here knows about znodes or HTTP.

/** One target as the balancer sees it. */
export interface TargetState {
  readonly name: string
  /** ZooKeeper count + this proxy's unflushed delta. */
  readonly requests: number
  readonly inFlight: number
  /**
   * Changes when the znode is re-created (its czxid). A re-created znode is a restarted
   * replica, so whatever we learnt about the old one (ejection) no longer applies.
   */
  readonly generation: string
}

/** Milliseconds; injected so tests drive time by hand (no real clock in unit tests). */
export type Clock = () => number

/** Uniform in [0, 1); injected so tie-breaks are reproducible under a seed. */
export type RandomSource = () => number
