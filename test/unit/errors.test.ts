// The error catalogue and its documentation stay in step (after fastify's test that every
// FST_ERR code is documented): every code is documented, nothing documented is stale, and every
// code is used somewhere in src/ (no dead entries).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createError, errorCatalogue, hasCode } from '../../src/errors.js'

const root = join(import.meta.dirname, '..', '..')
const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8')
const codes = Object.keys(errorCatalogue)

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

describe('error catalogue', () => {
  it('documents every code in docs/errors.md', () => {
    const missing = codes.filter(c => !doc.includes(`\`${c}\``))
    expect(missing).toEqual([])
  })

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/`(ZKPROXY_ERR_[A-Z_]+)`/g)].map(m => m[1])
    expect(documented.filter(c => c !== undefined && !codes.includes(c))).toEqual([])
  })

  it('has no code that src/ never raises', () => {
    const text = sources(join(root, 'src')).filter(p => !p.endsWith('errors.ts') || p.includes('/zk/')).map(p => readFileSync(p, 'utf8')).join('\n')
    expect(codes.filter(c => !text.includes(c))).toEqual([])
  })

  it('builds errors with code, status and cause', () => {
    const cause = new Error('boom')
    const err = createError('ZKPROXY_ERR_PROXY_NO_TARGETS', 'detail', cause)
    expect(err).toMatchObject({ code: 'ZKPROXY_ERR_PROXY_NO_TARGETS', statusCode: 503, cause })
    expect(err.message).toBe('no live target is registered: detail')
    expect(hasCode(err, 'ZKPROXY_ERR_PROXY_NO_TARGETS')).toBe(true)
    expect(hasCode({ code: 'other' }, 'ZKPROXY_ERR_PROXY_NO_TARGETS')).toBe(false)
  })
})
