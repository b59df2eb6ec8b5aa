// Where a proxy may send traffic (docs/security.md "Target address policy"). Whoever can write
// under the targets path chooses where the proxy connects; without this, one rogue znode with
// {"url":"http://169.254.169.254"} would hand the cloud metadata service (and its credentials)
// to any client of the public listener. Pure: no I/O, and no DNS — see `check`.
import { BlockList, isIP } from 'node:net'

/** What `private` stands for (and the `--allow-targets` default): RFC 1918, loopback, ULA. */
export const PRIVATE_RANGES: readonly string[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '::1/128', 'fc00::/7']

/**
 * Never targets, whatever the allow list says. Link-local holds the metadata services
 * (169.254.169.254 on AWS/GCP/Azure/OpenStack, 169.254.170.2 for ECS task credentials);
 * AWS also serves it at fd00:ec2::254, inside the private fc00::/7. Unspecified addresses
 * (0.0.0.0, ::) connect to this very host, and multicast/broadcast are not origins.
 */
export const DENIED_RANGES: readonly string[] = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', '0.0.0.0/8', '::/128', '224.0.0.0/4', '255.255.255.255/32', 'ff00::/8']

export const DEFAULT_ALLOW_TARGETS: readonly string[] = ['private', 'localhost']

type Family = 'ipv4' | 'ipv6'

/** An IP address as written, or the IPv4 inside an IPv4-mapped/NAT64 IPv6 one. */
export function canonicalIp (address: string): { address: string, family: Family } | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const v = isIP(a)
  if (v === 4) return { address: a, family: 'ipv4' }
  if (v !== 6) return undefined
  // ::ffff:a.b.c.d reaches the IPv4 host on a dual-stack socket, 64:ff9b::/96 through NAT64:
  // judge them as the IPv4 address they carry (the URL parser writes them in hex).
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(a)
  if (m !== null) {
    if (m[1] !== undefined) return { address: m[1], family: 'ipv4' }
    const hi = parseInt(m[2]!, 16)
    const lo = parseInt(m[3]!, 16)
    return { address: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' }
  }
  return { address: a.toLowerCase(), family: 'ipv6' }
}

/** A set of CIDR ranges (`10.0.0.0/8`, `::1`, `fc00::/7`; a bare address is one host). */
export class IpSet {
  readonly #list = new BlockList()
  readonly entries: readonly string[]

  constructor (cidrs: readonly string[]) {
    for (const c of cidrs) {
      const reason = addCidr(this.#list, c)
      if (reason !== undefined) throw new RangeError(reason)
    }
    this.entries = Object.freeze([...cidrs])
  }

  has (address: string): boolean {
    const ip = canonicalIp(address)
    return ip !== undefined && this.#list.check(ip.address, ip.family)
  }
}

function addCidr (list: BlockList, text: string): string | undefined {
  const [addr = '', bits, extra] = text.trim().split('/')
  const ip = canonicalIp(addr)
  if (ip === undefined || extra !== undefined) return `"${text}" is not an IP address or CIDR range`
  const max = ip.family === 'ipv4' ? 32 : 128
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN
  if (!(prefix >= 0 && prefix <= max)) return `"${text}": prefix length must be 0-${max}`
  list.addSubnet(ip.address, prefix, ip.family)
  return undefined
}

/** Host name entries: `localhost`, `api.internal`, `*.svc.cluster.local` (any depth below). */
const NAME = /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/i

/**
 * Checks `--allow-targets` entries: CIDR ranges, addresses, `private`, `any`, host names and
 * `*.suffix` patterns. The reason for the first bad entry, or undefined.
 */
export function allowListProblem (entries: readonly string[]): string | undefined {
  if (entries.length === 0) return 'the list is empty (use "any" to allow every address)'
  for (const e of entries) {
    if (e === 'private' || e === 'any' || NAME.test(e)) continue
    const reason = addCidr(new BlockList(), e)
    if (reason !== undefined) return reason
  }
  return undefined
}

export interface SelfAddress {
  readonly host: string
  readonly port: number
}

export interface AddressPolicyOptions {
  readonly allow: readonly string[]
  /**
   * This proxy's own listeners (for a wildcard listener, each local address with its port): a
   * target there would loop, or put the admin routes on the public listener.
   */
  readonly self?: readonly SelfAddress[]
}

export class AddressPolicy {
  readonly #allowed: IpSet
  readonly #denied = new IpSet(DENIED_RANGES)
  readonly #names: ReadonlySet<string>
  readonly #suffixes: readonly string[]
  readonly #selfPorts: ReadonlySet<number>
  readonly #selfHosts: IpSet
  // The TargetSet asks about every target on every rebuild (each count flush anywhere):
  // remember verdicts per origin; origins are few, and the bound only guards against churn.
  readonly #verdicts = new Map<string, string | undefined>()

  constructor (opts: AddressPolicyOptions) {
    const problem = allowListProblem(opts.allow)
    if (problem !== undefined) throw new RangeError(problem)
    const cidrs: string[] = []
    const names = new Set<string>()
    const suffixes: string[] = []
    for (const e of opts.allow) {
      if (e === 'private') cidrs.push(...PRIVATE_RANGES)
      else if (e === 'any') cidrs.push('0.0.0.0/0', '::/0')
      else if (e.startsWith('*.')) suffixes.push(e.slice(1).toLowerCase())
      else if (NAME.test(e) && canonicalIp(e) === undefined) names.add(e.toLowerCase())
      else cidrs.push(e)
    }
    this.#allowed = new IpSet(cidrs)
    this.#names = names
    this.#suffixes = suffixes
    this.#selfPorts = new Set((opts.self ?? []).map(s => s.port))
    // Our own listeners answer on loopback and on any address we listen on.
    const selfHosts = ['127.0.0.0/8', '::1']
    for (const s of opts.self ?? []) if (canonicalIp(s.host) !== undefined) selfHosts.push(s.host)
    this.#selfHosts = new IpSet(selfHosts)
  }

  /**
   * Why traffic must not go to `origin` (`http://10.0.0.5:4000`), or undefined. Host names are
   * matched by name only, never resolved: an answer checked now may differ when undici
   * connects a moment later (DNS rebinding), so a listed name is trusted as far as whoever
   * controls its DNS zone, and an unlisted one is refused.
   */
  check (origin: string): string | undefined {
    if (this.#verdicts.has(origin)) return this.#verdicts.get(origin)
    const verdict = this.#judge(origin)
    if (this.#verdicts.size >= 10_000) this.#verdicts.clear()
    this.#verdicts.set(origin, verdict)
    return verdict
  }

  #judge (origin: string): string | undefined {
    let u: URL
    try { u = new URL(origin) } catch { return `url ${JSON.stringify(origin)} is not valid` }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `scheme ${u.protocol} is not http or https`
    const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port)
    const ip = canonicalIp(u.hostname)
    if (ip === undefined) {
      const name = u.hostname.toLowerCase()
      if (this.#names.has(name) || this.#suffixes.some(s => name.endsWith(s))) {
        return name === 'localhost' && this.#selfPorts.has(port) ? `${u.host} is this proxy's own listener` : undefined
      }
      return `host name ${u.hostname} is not in --allow-targets (names are allowed by name, not resolved)`
    }
    if (this.#denied.has(ip.address)) return `address ${u.hostname} is never a target (link-local/metadata, unspecified or multicast)`
    if (!this.#allowed.has(ip.address)) return `address ${u.hostname} is outside --allow-targets`
    if (this.#selfPorts.has(port) && this.#selfHosts.has(ip.address)) return `${u.host} is this proxy's own listener`
    return undefined
  }
}
