// Certificates made at test time with the openssl command (node:crypto cannot issue X.509),
// in a temp dir removed in teardown, and HTTPS backends on 127.0.0.1 port 0 that record what
// reached them. Nothing here is a fixture checked into the repository.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Pki {
  readonly dir: string
  /** PEM of the test CA (what --upstream-ca and clients trust). */
  readonly caCert: Buffer
  readonly caFile: string
  /** Issues a key and certificate signed by the CA (or self-signed) for the given SANs. */
  issue: (name: string, san: string, opts?: { selfSigned?: boolean }) => Promise<Issued>
  remove: () => Promise<void>
}

export interface Issued {
  readonly cert: Buffer
  readonly key: Buffer
  readonly certFile: string
  readonly keyFile: string
}

async function openssl (args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    throw new Error(`openssl ${args[0] ?? ''} failed (is the openssl command installed?): ${(err as Error).message}`, { cause: err })
  }
}

export async function createPki (): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'zkproxy-pki-'))
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=zkproxy test CA', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  const caFile = join(dir, 'ca.crt')
  const caCert = await readFile(caFile)
  const issue = async (name: string, san: string, opts: { selfSigned?: boolean } = {}): Promise<Issued> => {
    const keyFile = join(dir, `${name}.key`)
    const certFile = join(dir, `${name}.crt`)
    if (opts.selfSigned === true) {
      await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile, '-addext', `subjectAltName=${san}`], dir)
    } else {
      await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', `${name}.csr`], dir)
      await writeFile(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`)
      await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
        '-days', '2', '-out', certFile, '-extfile', `${name}.ext`], dir)
    }
    return { cert: await readFile(certFile), key: await readFile(keyFile), certFile, keyFile }
  }
  return { dir, caCert, caFile, issue, remove: async () => { await rm(dir, { recursive: true, force: true }) } }
}

export interface TlsBackend {
  readonly url: string
  readonly seen: string[]
  close: () => Promise<void>
}

/** An HTTPS origin answering `tls <name> <path>`; `seen` lists the paths that reached it. */
export async function startTlsBackend (name: string, issued: Issued): Promise<TlsBackend> {
  const seen: string[] = []
  const server: Server = createServer({ key: issued.key, cert: issued.cert }, (req, res) => {
    seen.push(req.url ?? '')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ servedBy: name, headers: req.headers }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `https://127.0.0.1:${port}`,
    seen,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
