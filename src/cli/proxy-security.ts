// The proxy's security wiring (docs/security.md), kept out of proxy-runtime.ts: which targets
// are admitted (address policy + ACL gate), which peers' X-Forwarded-* are trusted, and the
// TLS material read from the files the flags name. Reading a file or parsing PEM fails with one
// line naming the flag (exit 2).
import { readFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { createSecureContext } from 'node:tls'
import type { Logger } from 'pino'
import type { HostPort, ProxyConfig } from '../config.js'
import { createError } from '../errors.js'
import { AddressPolicy, IpSet, type SelfAddress } from '../registry/address-policy.js'
import { nodeAcls } from '../registry/acl-policy.js'
import { TargetAclGate } from '../registry/target-acl.js'
import type { Admission, TargetInfo, TargetSet } from '../registry/target-set.js'
import type { ZkSession } from '../zk/index.js'

export interface TlsMaterial {
  readonly tls?: { readonly key: Buffer, readonly cert: Buffer }
  readonly upstreamCa?: Buffer
}

async function readPem (flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw createError('ZKPROXY_ERR_CONFIG_INVALID', `${flag} ${file}: cannot read: ${(err as Error).message}`, err)
  }
}

/** The PEM files of --tls-cert/--tls-key/--upstream-ca, checked before anything listens. */
export async function loadTls (cfg: ProxyConfig): Promise<TlsMaterial> {
  const out: { tls?: { key: Buffer, cert: Buffer }, upstreamCa?: Buffer } = {}
  if (cfg.tls !== undefined) {
    const cert = await readPem('--tls-cert', cfg.tls.certFile)
    const key = await readPem('--tls-key', cfg.tls.keyFile)
    try {
      createSecureContext({ cert, key })
    } catch (err) {
      throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--tls-cert/--tls-key: not a usable certificate and key (${(err as Error).message})`, err)
    }
    out.tls = { key, cert }
  }
  if (cfg.upstreamCaFile !== undefined) {
    const ca = await readPem('--upstream-ca', cfg.upstreamCaFile)
    // createSecureContext takes a file without any certificate; undici would then trust nothing.
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--upstream-ca ${cfg.upstreamCaFile}: no PEM certificate in it`)
    }
    try {
      createSecureContext({ ca })
    } catch (err) {
      throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--upstream-ca ${cfg.upstreamCaFile}: ${(err as Error).message}`, err)
    }
    out.upstreamCa = ca
  }
  return out
}

/** `(peer address) => trusted?` for --trust-proxy; undefined when no peer is trusted. */
export function trustedPeers (cfg: ProxyConfig): ((address: string) => boolean) | undefined {
  if (cfg.trustProxy.length === 0) return undefined
  const set = new IpSet(cfg.trustProxy)
  return (address) => set.has(address)
}

/**
 * This proxy's own listeners as the address policy must refuse them: the listener's address,
 * or every local address when it listens on a wildcard.
 */
export function selfAddresses (listeners: readonly HostPort[]): SelfAddress[] {
  const out: SelfAddress[] = []
  for (const l of listeners) {
    if (l.host === '0.0.0.0' || l.host === '::' || l.host === '') {
      for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) out.push({ host: a.address, port: l.port })
    } else {
      out.push(l)
    }
  }
  return out
}

export interface TargetAdmission {
  /** TargetSet's `admit`; refuses everything until `start` was called. */
  readonly admit: (t: TargetInfo) => Admission
  /** Called once the listeners' ports are known (port 0 picks them at listen time). */
  start (self: readonly SelfAddress[]): void
  close (): void
}

/**
 * A target is admitted when its address passes --allow-targets and, in ACL mode, its znode
 * carries the replicas' ACL. Address rejections are warned once per znode version (by the
 * TargetSet); an ACL still being set waits quietly.
 */
export function targetAdmission (cfg: ProxyConfig, session: ZkSession, targets: () => TargetSet, log: Logger): TargetAdmission {
  let policy: AddressPolicy | undefined
  const gate = cfg.zkAcl === undefined
    ? undefined
    : new TargetAclGate({ session, targetsPath: cfg.targetsPath, expected: nodeAcls(cfg.zkAcl).target, logger: log, onChange: () => { targets().refresh() } })
  return {
    admit: (t) => {
      if (policy === undefined) return { wait: 'the proxy is starting' }
      return policy.check(t.origin) ?? gate?.check(t)
    },
    start: (self) => {
      policy = new AddressPolicy({ allow: cfg.allowTargets, self })
      targets().on('snapshot', (snap: { targets: readonly TargetInfo[], rejected: ReadonlyArray<{ name: string }>, counted?: unknown }) => {
        if (snap.counted !== undefined) return // the same targets, new counts
        gate?.prune(new Set([...snap.targets.map(t => t.name), ...snap.rejected.map(r => r.name)]))
      })
    },
    close: () => { gate?.close() }
  }
}
