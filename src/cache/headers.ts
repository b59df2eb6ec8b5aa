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

// RFC 8941 §3.1.2 / §3.3: the parts of a Structured Field Dictionary a cache-control field uses.
const SF_KEY = /^[a-z*][a-z0-9_\-.*]*$/
const SF_TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/
const SF_INTEGER = /^-?\d{1,15}$/
const SF_DECIMAL = /^-?\d{1,12}\.\d{1,3}$/
const SF_BYTES = /^:[A-Za-z0-9+/=]*:$/

/** A bare item's value as Cache-Control directives hold them; undefined when not a bare item. */
function sfBareItem (raw: string): string | true | undefined {
  if (raw === '?1') return true
  if (raw === '?0') return undefined
  if (SF_INTEGER.test(raw) || SF_DECIMAL.test(raw) || SF_TOKEN.test(raw) || SF_BYTES.test(raw)) return raw
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
    const inner = raw.slice(1, -1)
    // Only \" and \\ escapes; printable ASCII only (RFC 8941 §3.3.3).
    if (!/^(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*$/.test(inner)) return undefined
    return inner.replace(/\\(["\\])/g, '$1')
  }
  return undefined
}

/**
 * Parses a targeted cache-control field (RFC 9213 §2.1, e.g. CDN-Cache-Control): a Structured
 * Field Dictionary (RFC 8941 §3.2) whose members are Cache-Control directives. Undefined when
 * the field is absent, empty or not a valid Dictionary: then "the cache ... MUST ignore" it and
 * Cache-Control applies. A member `?0` (false) is as if absent; a repeated key keeps the last
 * value (RFC 8941 §4.2.2). Inner lists are not directive values and make the field invalid.
 */
export function parseTargetedField (value: string | undefined): CacheControl | undefined {
  if (value === undefined || value.trim() === '') return undefined
  // An empty member (leading, trailing or doubled comma) is a parse failure in RFC 8941.
  if (/^\s*,|,\s*$|,\s*,/.test(value.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) return undefined
  const directives = new Map<string, string | true>()
  for (const member of splitOutsideQuotes(value)) {
    // Parameters (`;a=1`) are allowed by the syntax and carry nothing a cache reads here.
    const [item = '', ...params] = splitParams(member)
    const eq = item.indexOf('=')
    const key = (eq === -1 ? item : item.slice(0, eq)).trim()
    if (!SF_KEY.test(key)) return undefined
    for (const p of params) {
      const peq = p.indexOf('=')
      if (!SF_KEY.test((peq === -1 ? p : p.slice(0, peq)).trim())) return undefined
      if (peq !== -1 && p.slice(peq + 1).trim() !== '?0' && sfBareItem(p.slice(peq + 1).trim()) === undefined) return undefined
    }
    if (eq === -1) {
      directives.set(key, true)
      continue
    }
    const raw = item.slice(eq + 1).trim()
    if (raw === '?0') {
      directives.delete(key)
      continue
    }
    const v = sfBareItem(raw)
    if (v === undefined) return undefined
    directives.set(key, v)
  }
  return { directives, conflicting: new Set() }
}

/** Splits a dictionary member at `;` outside quoted strings. */
function splitParams (member: string): string[] {
  const parts: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < member.length; i++) {
    const ch = member[i]!
    if (quoted && ch === '\\' && i + 1 < member.length) {
      current += ch + member[i + 1]!
      i++
      continue
    }
    if (ch === '"') quoted = !quoted
    if (ch === ';' && !quoted) {
      parts.push(current.trim())
      current = ''
      continue
    }
    current += ch
  }
  parts.push(current.trim())
  return parts
}
