import type { HeaderMap } from './types.js'

/**
 * Reads a header field by name, case-insensitively (RFC 9110 §5.1). A field given as an
 * array (repeated lines) is combined with ", ", which RFC 9110 §5.3 allows for list-based
 * fields; Set-Cookie is the one field where that is wrong, and the cache only ever asks
 * whether it is present.
 */
export function getHeader (headers: HeaderMap, name: string): string | undefined {
  const value = getRawHeader(headers, name)
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : value
}

/** Like `getHeader` but keeps repeated lines apart (for Host, where repetition is an error). */
export function getRawHeader (headers: HeaderMap, name: string): string | string[] | undefined {
  // Callers name fields in lower case, as Node stores them: one property read, no new string.
  const direct = headers[name]
  if (direct !== undefined) return direct
  const lower = name.toLowerCase()
  if (lower !== name) {
    const folded = headers[lower]
    if (folded !== undefined) return folded
  }
  // Node already lower-cases names; the scan only runs for hand-built maps and absent fields.
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && key.toLowerCase() === lower) return value
  }
  return undefined
}

/** True when the field is present at all, even with an empty value. */
export function hasHeader (headers: HeaderMap, name: string): boolean {
  return getHeader(headers, name) !== undefined
}

/**
 * Splits a comma-separated list of tokens (Vary, Connection, Pragma), trimming and dropping
 * empty elements as RFC 9110 §5.6.1 requires of recipients. Not for fields whose elements
 * may hold quoted commas (Cache-Control, If-None-Match have their own parsers).
 */
export function splitTokens (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((part) => part.trim()).filter((part) => part !== '')
}

/** Parsed Cache-Control: directive names lower-cased; `true` for a directive without value. */
export interface CacheControl {
  readonly directives: ReadonlyMap<string, string | true>
  /** Directives that appeared more than once with different values (RFC 9111 §4.2.1). */
  readonly conflicting: ReadonlySet<string>
}

/**
 * Parses Cache-Control (RFC 9111 §5.2). Directive names are case-insensitive; a value may
 * be a quoted-string holding commas (`private="set-cookie, x-a"`), so this walks the
 * field instead of splitting on every comma. The first occurrence of a directive wins,
 * and a directive repeated with a different value is reported as conflicting so that
 * freshness can treat it as invalid (§4.2.1: "the response should be considered stale").
 */
export function parseCacheControl (value: string | undefined): CacheControl {
  const directives = new Map<string, string | true>()
  const conflicting = new Set<string>()
  if (value === undefined) return { directives, conflicting }

  for (const element of splitOutsideQuotes(value)) {
    const eq = element.indexOf('=')
    const name = (eq === -1 ? element : element.slice(0, eq)).trim().toLowerCase()
    if (name === '') continue
    let arg: string | true = true
    if (eq !== -1) {
      arg = element.slice(eq + 1).trim()
      if (arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"')) {
        arg = arg.slice(1, -1).replace(/\\(.)/g, '$1')
      }
    }
    const previous = directives.get(name)
    if (previous === undefined) {
      directives.set(name, arg)
    } else if (previous !== arg) {
      conflicting.add(name)
    }
  }
  return { directives, conflicting }
}

/**
 * Reads a delta-seconds directive value (RFC 9111 §1.2.2: 1*DIGIT). Returns undefined for
 * an absent directive and NaN for a malformed one, so callers can tell "no lifetime given"
 * from "a lifetime that cannot be trusted".
 */
export function deltaSeconds (cc: CacheControl, name: string): number | undefined {
  const value = cc.directives.get(name)
  if (value === undefined) return undefined
  if (value === true || !/^\d+$/.test(value) || cc.conflicting.has(name)) return Number.NaN
  // §1.2.2: a value too large to represent is treated as 2^31 (about 68 years).
  return Math.min(Number(value), 2 ** 31)
}

/** Splits on commas that are not inside a quoted-string (RFC 9110 §5.6.4). */
export function splitOutsideQuotes (value: string): string[] {
  const parts: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]
    if (quoted && ch === '\\' && i + 1 < value.length) {
      current += ch + value[i + 1]
      i++
      continue
    }
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) {
      parts.push(current.trim())
      current = ''
      continue
    }
    current += ch
  }
  parts.push(current.trim())
  return parts.filter((part) => part !== '')
}
