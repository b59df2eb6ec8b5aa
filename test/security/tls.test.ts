// TLS on both sides (docs/security.md "TLS"): the public listener serves HTTPS with
// --tls-cert/--tls-key, and https:// targets are verified — by Node's bundled CAs, or by
// --upstream-ca instead — so a target that cannot prove its name gets no request. Certificates
// are made at test time with the openssl command (test/support/tls.ts).
import { connect } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Agent, request } from 'undici'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { createPki, startTlsBackend, type Issued, type Pki, type TlsBackend } from '../support/tls.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let pki: Pki
let localhostCert: Issued
const tlsBackends: TlsBackend[] = []
const agents: Agent[] = []

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  pki = await createPki()
  localhostCert = await pki.issue('local', 'IP:127.0.0.1,DNS:localhost')
})

afterEach(async () => {
  await stopAllProxies()
  await closeAllBackends()
  for (const b of tlsBackends.splice(0)) await b.close()
  for (const a of agents.splice(0)) await a.close()
  await closeAllSessions()
})

afterAll(async () => {
  await zk?.stop()
  await pki?.remove()
})

async function proxyTo (url: string, args: string[] = []): Promise<Awaited<ReturnType<typeof startTestProxy>>> {
  const s = await connectSession(zk.connectString)
  const targets = uniquePath('targets')
  await registerTarget(s, targets, 't', url)
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', targets, '--cache-ttl', '0', ...args])
  await until(() => proxy.router.targets.length === 1)
  return proxy
}

function trusting (ca: Buffer): Agent {
  const a = new Agent({ connect: { ca } })
  agents.push(a)
  return a
}

async function tlsBackend (name: string, issued: Issued): Promise<TlsBackend> {
  const b = await startTlsBackend(name, issued)
  tlsBackends.push(b)
  return b
}

describe('HTTPS on the public listener', () => {
  it('serves HTTPS with --tls-cert/--tls-key and tells the backend X-Forwarded-Proto: https (a client\'s "http" is replaced)', async () => {
    const backend = await startBackend('b', (req, res) => { res.end(JSON.stringify(req.headers)) })
    const proxy = await proxyTo(backend.url, ['--tls-cert', localhostCert.certFile, '--tls-key', localhostCert.keyFile])
    expect(proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const r = await request(`${proxy.url}/s`, { dispatcher: trusting(pki.caCert), headers: { 'x-forwarded-proto': 'http' } })
    const seen = await r.body.json() as Record<string, string>
    expect(r.statusCode).toBe(200)
    expect(seen['x-forwarded-proto']).toBe('https')
  })

  it('a plaintext HTTP request to the HTTPS listener is not proxied', async () => {
    const backend = await startBackend('b')
    const proxy = await proxyTo(backend.url, ['--tls-cert', localhostCert.certFile, '--tls-key', localhostCert.keyFile])
    const out = await new Promise<string>((resolve) => {
      const sock = connect(Number(new URL(proxy.url).port), '127.0.0.1')
      let text = ''
      sock.on('data', (c: Buffer) => { text += c.toString('latin1') })
      sock.on('error', () => {})
      sock.on('close', () => { resolve(text) })
      sock.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    })
    expect(out).not.toMatch(/^HTTP\/1\.1 200/)
    expect(backend.hits()).toBe(0)
  })

  it('unreadable or invalid --tls-cert/--tls-key files stop the start with an error naming the flag', async () => {
    await expect(startTestProxy(zk.connectString, ['--tls-cert', '/nonexistent.pem', '--tls-key', localhostCert.keyFile])).rejects.toThrow(/--tls-cert \/nonexistent\.pem: cannot read/)
    await expect(startTestProxy(zk.connectString, ['--tls-cert', localhostCert.keyFile, '--tls-key', localhostCert.keyFile])).rejects.toThrow(/--tls-cert\/--tls-key: not a usable certificate/)
  })
})

describe('https:// targets', () => {
  it('a target whose certificate comes from an unknown CA gets no request: 502 (undici verifies by default)', async () => {
    const b = await tlsBackend('private-ca', localhostCert)
    const proxy = await proxyTo(b.url)
    const r = await fetch(`${proxy.url}/x`)
    expect(r.status).toBe(502)
    expect(b.seen).toEqual([])
  })

  it('a self-signed target certificate gets no request', async () => {
    const b = await tlsBackend('self', await pki.issue('self', 'IP:127.0.0.1', { selfSigned: true }))
    const proxy = await proxyTo(b.url, ['--upstream-ca', pki.caFile])
    expect((await fetch(`${proxy.url}/x`)).status).toBe(502)
    expect(b.seen).toEqual([])
  })

  it('with --upstream-ca, a target signed by that CA is reached over https', async () => {
    const b = await tlsBackend('private-ca', localhostCert)
    const proxy = await proxyTo(b.url, ['--upstream-ca', pki.caFile])
    const r = await fetch(`${proxy.url}/x`)
    expect(r.status).toBe(200)
    expect((await r.json() as { servedBy: string }).servedBy).toBe('private-ca')
    expect(b.seen).toEqual(['/x'])
  })

  it('a target whose certificate names another host gets no request, even from the trusted CA', async () => {
    const b = await tlsBackend('other-name', await pki.issue('other', 'DNS:other.example'))
    const proxy = await proxyTo(b.url, ['--upstream-ca', pki.caFile])
    expect((await fetch(`${proxy.url}/x`)).status).toBe(502)
    expect(b.seen).toEqual([])
  })

  it('an --upstream-ca file without a certificate stops the start with an error naming the flag', async () => {
    await expect(startTestProxy(zk.connectString, ['--upstream-ca', localhostCert.keyFile])).rejects.toThrow(/--upstream-ca .*no PEM certificate/)
  })
})
