import { afterEach, describe, expect, it, vi } from 'vitest'
import { Coalescer } from '../../../src/cache/coalescer.js'

// A promise the test settles by hand, standing in for the upstream request.
function deferred<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void } {
  let settle!: { resolve: (v: T) => void, reject: (e: Error) => void }
  const promise = new Promise<T>((resolve, reject) => { settle = { resolve, reject } })
  return { promise, resolve: (v) => { settle.resolve(v) }, reject: (e) => { settle.reject(e) } }
}

describe('Coalescer', () => {
  afterEach(() => { vi.useRealTimers() })

  it('100 concurrent callers with one key share one call', async () => {
    const coalescer = new Coalescer<string>()
    const upstream = deferred<string>()
    const fn = vi.fn(async () => await upstream.promise)
    const results = Array.from({ length: 100 }, () => coalescer.run('k', fn, 5_000))
    expect(fn).toHaveBeenCalledTimes(1)
    expect(coalescer.size).toBe(1)
    upstream.resolve('body')
    expect(await Promise.all(results)).toEqual(Array(100).fill('body'))
    expect(coalescer.size).toBe(0)
  })

  it('different keys do not share', async () => {
    const coalescer = new Coalescer<string>()
    const fn = vi.fn(async () => await Promise.resolve('x'))
    await Promise.all([coalescer.run('a', fn, 0), coalescer.run('b', fn, 0)])
    expect(fn).toHaveBeenCalledTimes(2)
  })

  it('a failure reaches every waiter and is not remembered', async () => {
    const coalescer = new Coalescer<string>()
    const upstream = deferred<string>()
    const failing = vi.fn(async () => await upstream.promise)
    const waiters = Array.from({ length: 10 }, () => coalescer.run('k', failing, 5_000))
    const boom = new Error('ECONNREFUSED')
    upstream.reject(boom)
    const settled = await Promise.allSettled(waiters)
    expect(settled.every((s) => s.status === 'rejected' && s.reason === boom)).toBe(true)
    expect(failing).toHaveBeenCalledTimes(1)
    expect(coalescer.size).toBe(0)

    const retry = vi.fn(async () => await Promise.resolve('ok'))
    await expect(coalescer.run('k', retry, 5_000)).resolves.toBe('ok')
    expect(retry).toHaveBeenCalledTimes(1)
  })

  it('a synchronous throw in fn is a rejection like any other', async () => {
    const coalescer = new Coalescer<string>()
    await expect(coalescer.run('k', () => { throw new Error('sync') }, 0)).rejects.toThrow('sync')
    expect(coalescer.size).toBe(0)
  })

  it('a timeout rejects only the waiter that ran out of time', async () => {
    vi.useFakeTimers()
    const coalescer = new Coalescer<string>()
    const upstream = deferred<string>()
    const fn = vi.fn(async () => await upstream.promise)
    const patient = coalescer.run('k', fn, 10_000)
    const hurried = coalescer.run('k', fn, 100)
    const hurriedResult = expect(hurried).rejects.toMatchObject({ code: 'ZKPROXY_ERR_CACHE_COALESCE_TIMEOUT', timeoutMs: 100 })
    await vi.advanceTimersByTimeAsync(150)
    await hurriedResult

    // The shared call keeps going: a newcomer still joins it instead of starting another.
    const late = coalescer.run('k', fn, 10_000)
    expect(coalescer.size).toBe(1)
    upstream.resolve('body')
    await expect(patient).resolves.toBe('body')
    await expect(late).resolves.toBe('body')
    expect(fn).toHaveBeenCalledTimes(1)
  })

  it('a rejection after every waiter timed out stays handled', async () => {
    vi.useFakeTimers()
    const unhandled = vi.fn()
    process.on('unhandledRejection', unhandled)
    try {
      const coalescer = new Coalescer<string>()
      const upstream = deferred<string>()
      const waiter = coalescer.run('k', async () => await upstream.promise, 10)
      const timedOut = expect(waiter).rejects.toMatchObject({ code: 'ZKPROXY_ERR_CACHE_COALESCE_TIMEOUT' })
      await vi.advanceTimersByTimeAsync(20)
      await timedOut
      upstream.reject(new Error('late failure'))
      vi.useRealTimers()
      await new Promise((resolve) => setImmediate(resolve))
      expect(unhandled).not.toHaveBeenCalled()
      expect(coalescer.size).toBe(0)
    } finally {
      process.off('unhandledRejection', unhandled)
    }
  })
})
