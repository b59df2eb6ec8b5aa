// Bounded memory for streamed bodies. Every chunk of a response body arrives in a buffer of
// its own (Node reads a socket 64 KiB at a time), which is garbage once written to the client.
// V8 frees such buffers only when it collects garbage, and it collects when JavaScript objects
// pile up, not when buffer memory does: streaming allocates little JavaScript per chunk, so
// about 64 MB of spent buffers accumulate before V8's external-memory limit forces a
// collection (measured: a 64 MB download grew the proxy's peak RSS by ~60 MB). A young-
// generation collection after every few MiB streamed frees them early: peak growth ~25 MB
// (bench/memory.ts). Only large bodies count (past their first MiB): forcing collections on
// the ordinary traffic of small responses promotes in-flight objects to the old generation and
// measurably slows the proxy down, while small bodies never pile up anyway.
//
// The collector is V8's `gc` function, made available at start-up with --expose-gc set from
// code (what the `expose-gc` package does); if that is refused, bodies still stream and
// memory is bounded by V8's own limit instead.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'minor' | 'major' }) => void

const SPENT_BYTES_PER_COLLECTION = 4 * 1024 * 1024
/** A body counts once this much of it has streamed (or when its size is unknown or larger). */
export const LARGE_BODY_BYTES = 1024 * 1024

function findCollector (): Collect | undefined {
  const existing = (globalThis as { gc?: Collect }).gc
  if (typeof existing === 'function') return existing
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? gc as Collect : undefined
  } catch {
    return undefined
  }
}

const collect = findCollector()
let spent = 0

/** Records `bytes` of a large body streamed through; a young-generation collection every 4 MiB. */
export function noteStreamed (bytes: number): void {
  spent += bytes
  if (spent < SPENT_BYTES_PER_COLLECTION) return
  spent = 0
  collect?.({ type: 'minor' })
}
