// holdHead (src/proxy/forward.ts): the fastify path holds an upstream response back until its
// first body byte or its end, so a target failing in between can still be failed over.
import { describe, expect, it } from 'vitest'
import { PassThrough, Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { holdHead, type UpstreamResponse } from '../../../src/proxy/forward.js'

function upstream (stream: Readable): UpstreamResponse {
  return { statusCode: 200, headers: { 'content-length': '5' }, stream }
}

interface Outcome { ready?: UpstreamResponse, failed?: Error }

function hold (res: UpstreamResponse): { outcome: Outcome, drop: () => void } {
  const outcome: Outcome = {}
  const drop = holdHead(res, (r) => { outcome.ready = r }, (err) => { outcome.failed = err })
  return { outcome, drop }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('holdHead', () => {
  it('waits for the first body byte, then hands on the same stream with every byte', async () => {
    const body = new PassThrough()
    const res = upstream(body)
    const { outcome } = hold(res)
    await tick()
    expect(outcome).toEqual({})
    body.write('hel')
    await tick()
    expect(outcome.ready).toBe(res)
    body.end('lo')
    expect(await text(outcome.ready!.stream as Readable)).toBe('hello')
  })

  it('reports an error that comes before any byte, and hands nothing on', async () => {
    const body = new PassThrough()
    const { outcome } = hold(upstream(body))
    body.destroy(new Error('other side closed'))
    await tick()
    expect(outcome.ready).toBeUndefined()
    expect(outcome.failed?.message).toBe('other side closed')
  })

  it('hands on an empty body that ends while held', async () => {
    const body = new PassThrough()
    const { outcome } = hold(upstream(body))
    body.end()
    await tick()
    expect(outcome.failed).toBeUndefined()
    expect(await text(outcome.ready!.stream as Readable)).toBe('')
  })

  it('hands on a fresh empty stream when the body had already ended unread (its own end is spent)', async () => {
    const body = new PassThrough()
    body.end()
    body.resume()
    await new Promise(resolve => body.once('end', resolve))
    const res = upstream(body)
    const { outcome } = hold(res)
    await tick()
    expect(outcome.ready).toBeDefined()
    expect(outcome.ready!.stream).not.toBe(body)
    expect(outcome.ready!.statusCode).toBe(200)
    expect(outcome.ready!.headers).toBe(res.headers)
    expect((outcome.ready!.stream as Readable).readableEnded).toBe(false)
    expect(await text(outcome.ready!.stream as Readable)).toBe('')
  })

  it('hands on a fresh empty stream when the body ended before anyone listened (no end event was emitted yet)', async () => {
    const body = new Readable({ read () {} })
    body.push(null)
    await tick()
    const res = upstream(body)
    const { outcome } = hold(res)
    await tick()
    expect(outcome.failed).toBeUndefined()
    // Its consumer (fastify's pipe, the cache's 'end' listener) must still get an 'end'.
    expect((outcome.ready!.stream as Readable).readableEnded).toBe(false)
    expect(await text(outcome.ready!.stream as Readable)).toBe('')
  })

  it('reports a body that had already failed', async () => {
    const body = new PassThrough()
    body.on('error', () => {})
    body.destroy(new Error('gone'))
    await tick()
    const { outcome } = hold(upstream(body))
    expect(outcome.failed?.message).toBe('gone')
    expect(outcome.ready).toBeUndefined()
  })

  it('drop destroys the held response and reports nothing', async () => {
    const body = new PassThrough()
    const { outcome, drop } = hold(upstream(body))
    drop()
    await tick()
    expect(body.destroyed).toBe(true)
    expect(outcome).toEqual({})
  })
})
