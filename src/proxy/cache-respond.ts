// Writing stored responses to the client. A hit must cost about what answering from a Map
// costs, so everything that does not change between hits is done once, when the response is
// stored: the header fields are flattened into the raw `[name, value, …]` list that Node's
// `writeHead` serialises without building an object, with `Content-Length` computed from the
// stored body, and the list is reused for every hit. Only `Age` changes (RFC 9111 §5.1: the
// time since the response was generated), at most once per second, so its slot is rewritten
// in place when it does. `writeHead` copies the list into the head it writes synchronously, so
// one list per entry is safe to share between responses.
import type { ServerResponse } from 'node:http'
import { notModifiedHeaders, type CachedEntry, type HeaderMap } from '../cache/index.js'

// Not taken from the stored fields: `Age` and `Content-Length` are computed here, `X-Cache` is
// ours (an upstream cache's value would lie about this one), and the connection-level fields
// belong to the client connection (the forwarder already strips them; this is a backstop).
const RECOMPUTED: ReadonlySet<string> = new Set([
  'age', 'content-length', 'x-cache', 'connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade'
])

/** RFC 9110 §8.6: no Content-Length in a 1xx or 204 response (304 is never stored). */
function hasContentLength (status: number): boolean {
  return status >= 200 && status !== 204 && status !== 304
}

// RFC 9111 §5.5 obsoletes Warning, but clients and tools still read it.
const STALE_WARNING = '110 - "Response is Stale"'

/** A stored response with its pre-serialised head; one per stored variant. */
export class PreparedResponse {
  readonly entry: CachedEntry
  /** Stored fields + Content-Length, flattened: the part of the head that never changes. */
  readonly #fields: string[]
  /** `#fields` + `age`, `<n>`, `x-cache`, `HIT`; the age slot is rewritten in place. */
  readonly #hit: string[]
  #hitAge = 0
  /** The 304 head (RFC 9110 §15.4.5 fields), built on the first conditional hit. */
  #notModified: string[] | undefined
  #notModifiedAge = 0

  constructor (entry: CachedEntry) {
    this.entry = entry
    const fields = flatten(entry.headers)
    if (hasContentLength(entry.status)) fields.push('content-length', String(entry.body.length))
    this.#fields = fields
    this.#hit = [...fields, 'age', '0', 'x-cache', 'HIT']
  }

  /** Age in whole seconds at `now` (RFC 9111 §4.2.3: upstream age at store + time resident here). */
  ageAt (now: number): number {
    return this.entry.ageAtStoreSec + Math.floor(Math.max(0, now - this.entry.storedAt) / 1000)
  }

  /** The stored response as a hit; HEAD gets the same head without the body (RFC 9110 §9.3.2). */
  writeHit (res: ServerResponse, ageSec: number, head: boolean): void {
    const fields = this.#hit
    if (ageSec !== this.#hitAge) {
      fields[fields.length - 3] = String(ageSec)
      this.#hitAge = ageSec
    }
    res.writeHead(this.entry.status, fields)
    if (head) res.end()
    else res.end(this.entry.body)
  }

  /** A 304 for a conditional request the stored response satisfies (RFC 9111 §4.3.2). */
  writeNotModified (res: ServerResponse, ageSec: number): void {
    let fields = this.#notModified
    if (fields === undefined) {
      // flatten() leaves out `age`: it goes in its own slot at the end, like for hits.
      fields = flatten(notModifiedHeaders(this.entry, 0))
      const via = this.entry.headers['via']
      if (via !== undefined) fields.push('via', Array.isArray(via) ? via.join(', ') : via)
      fields.push('age', '0', 'x-cache', 'HIT')
      this.#notModified = fields
      this.#notModifiedAge = 0
    }
    if (ageSec !== this.#notModifiedAge) {
      fields[fields.length - 3] = String(ageSec)
      this.#notModifiedAge = ageSec
    }
    res.writeHead(304, fields)
    res.end()
  }

  /** The stored response served past its freshness because every target failed (stale-if-error). */
  writeStale (res: ServerResponse, ageSec: number, head: boolean): void {
    // Rare (upstream trouble), so a fresh list per response is fine here.
    res.writeHead(this.entry.status, [...this.#fields, 'age', String(ageSec), 'x-cache', 'STALE', 'warning', STALE_WARNING])
    if (head) res.end()
    else res.end(this.entry.body)
  }
}

/** `{ name: value | [values] }` → `[name, value, name, value, …]`, lower-case names, repeats kept. */
function flatten (headers: HeaderMap): string[] {
  const out: string[] = []
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const name = rawName.toLowerCase()
    if (RECOMPUTED.has(name)) continue
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else out.push(name, value)
  }
  return out
}
