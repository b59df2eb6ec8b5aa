import { describe, expect, it } from 'vitest'
import { invalidationTargets } from '../../../src/cache/invalidation.js'
import { request } from './fixtures.js'

describe('invalidationTargets (RFC 9111 §4.4)', () => {
  it('an unsafe method with a non-error response invalidates its target', () => {
    expect(invalidationTargets(request('/a?x=1', {}, 'POST'), { status: 201, headers: {} }))
      .toEqual([{ host: 'example.com', url: '/a?x=1' }])
    expect(invalidationTargets(request('/a', {}, 'PURGE'), { status: 302, headers: {} })).toHaveLength(1)
  })

  it('nothing for safe methods or error responses', () => {
    expect(invalidationTargets(request('/a', {}, 'GET'), { status: 200, headers: {} })).toEqual([])
    expect(invalidationTargets(request('/a', {}, 'DELETE'), { status: 404, headers: {} })).toEqual([])
    expect(invalidationTargets(request('/a', {}, 'PUT'), { status: 500, headers: {} })).toEqual([])
  })

  it('adds same-host Location and Content-Location, never another host', () => {
    const targets = invalidationTargets(request('/items/', {}, 'POST'), {
      status: 201,
      headers: { location: '42?v=1', 'content-location': 'http://other.example/items/42' }
    })
    expect(targets).toEqual([
      { host: 'example.com', url: '/items/' },
      { host: 'example.com', url: '/items/42?v=1' }
    ])
    expect(invalidationTargets(request('/a', {}, 'PUT'), { status: 200, headers: { 'content-location': 'http://example.com/a' } }))
      .toEqual([{ host: 'example.com', url: '/a' }])
  })
})
