// What a purge names: every stored response (no filter), those of one host, those whose
// request-target starts with a prefix, or both. Matched against the primary key (key.ts: the
// lower-cased Host immediately followed by the request-target), so no entry needs to be read.

export interface PurgeFilter {
  /** A host name, matched case-insensitively and whatever port the request named. */
  readonly host?: string | undefined
  /** A prefix of the request-target (path and query), e.g. `/blog/`; starts with `/`. */
  readonly prefix?: string | undefined
}

/** Why `filter` is not a purge filter, or undefined when it is one. */
export function purgeFilterProblem (filter: PurgeFilter): string | undefined {
  const { host, prefix } = filter
  if (host !== undefined && !/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$/.test(host)) return `host "${host}" is not a host name (no port, no path)`
  if (prefix !== undefined && (!prefix.startsWith('/') || /\s/.test(prefix))) return `prefix "${prefix}" must start with / and hold no spaces`
  return undefined
}

/** A predicate on primary keys for `filter` (assumed valid: see purgeFilterProblem). */
export function purgeMatcher (filter: PurgeFilter): (primary: string) => boolean {
  const host = filter.host?.toLowerCase()
  const prefix = filter.prefix
  return (primary) => {
    // A key's host holds no `/` (key.ts), so its first `/` starts the request-target.
    const slash = primary.indexOf('/')
    if (slash < 0) return false
    if (host !== undefined && hostOf(primary.slice(0, slash)) !== host) return false
    return prefix === undefined || primary.startsWith(prefix, slash)
  }
}

/** `example.com:9000` → `example.com`; `[::1]:80` → `[::1]`. */
function hostOf (hostPort: string): string {
  const end = hostPort.startsWith('[') ? hostPort.indexOf(']') + 1 : hostPort.indexOf(':')
  return end <= 0 ? hostPort : hostPort.slice(0, end)
}
