// `zkproxy purge`: drops cached responses on every proxy of the fleet, through ZooKeeper (a
// sequential node under --purge-path that every proxy watches; registry/purges.ts). No filter
// purges everything; --host and --prefix narrow it. Prints the purge's sequence number; exits 2
// with one line when ZooKeeper cannot be reached or refuses the write. In ACL mode it writes as
// the proxies' identity (--zk-auth with the --zk-acl-proxies credential).
import { purgeConfig } from '../config.js'
import { publishPurge, purgeAcl } from '../registry/purges.js'
import { ZkSession } from '../zk/index.js'
import type { CliContext } from './lifecycle.js'
import { withDeadline } from './time.js'

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const cfg = purgeConfig(raw)
  // As for `status`: a one-shot write, so the session's state lines only with debug output.
  const level = cfg.logLevel === 'debug' || cfg.logLevel === 'trace' ? cfg.logLevel : 'silent'
  const session = new ZkSession({ connect: cfg.zk, sessionTimeoutMs: cfg.sessionTimeoutMs, logger: ctx.logger.child({}, { level }), auth: cfg.zkAuth, createChroot: false })
  const filter = { ...(cfg.host === undefined ? {} : { host: cfg.host }), ...(cfg.prefix === undefined ? {} : { prefix: cfg.prefix }) }
  let sequence: number
  try {
    session.start()
    await session.waitConnected(cfg.timeoutMs).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ZKPROXY_ERR_ZK_AUTH_FAILED') throw new Error(`--zk-auth: ZooKeeper refused the credentials at ${cfg.zk}`, { cause: err })
      throw new Error(`cannot reach ZooKeeper at ${cfg.zk} within ${cfg.timeoutMs} ms (is it running? check --zk / ZK_CONNECT)`, { cause: err })
    })
    sequence = await withDeadline(publishPurge(session, cfg.purgePath, filter, { logger: ctx.logger, acl: cfg.zkAcl === undefined ? undefined : purgeAcl(cfg.zkAcl) }), cfg.timeoutMs, `writing to ZooKeeper at ${cfg.zk} took longer than ${cfg.timeoutMs} ms`)
  } finally {
    await session.close()
  }
  const what = cfg.host === undefined && cfg.prefix === undefined ? 'everything' : [cfg.host === undefined ? '' : `host ${cfg.host}`, cfg.prefix === undefined ? '' : `prefix ${cfg.prefix}`].filter(Boolean).join(', ')
  process.stdout.write(`purge ${sequence} published (${what}); every proxy watching ${cfg.purgePath} applies it\n`)
}
