import { describe, expect, it } from 'vitest'
import {
  parseVary, primaryKey, primaryKeyFor, secondaryKey, variantMatches, varyValues
} from '../../../src/cache/key.js'
import { request } from './fixtures.js'

describe('primaryKey', () => {
  it('is lower-cased host + request-target as received', () => {
    expect(primaryKey(request('/A/b?Q=1&r=%2F', { host: 'Example.COM:9000' }))).toBe('example.com:9000/A/b?Q=1&r=%2F')
  })

  it('keeps the query byte for byte: parameter order makes another key', () => {
    expect(primaryKey(request('/a?x=1&y=2'))).not.toBe(primaryKey(request('/a?y=2&x=1')))
    expect(primaryKey(request('/a?x=1'))).not.toBe(primaryKey(request('/a')))
  })

  it('is method-independent (GET and HEAD share it)', () => {
    expect(primaryKey(request('/a', {}, 'HEAD'))).toBe(primaryKey(request('/a', {}, 'GET')))
  })

  it('ignores unkeyed headers', () => {
    const plain = primaryKey(request('/a'))
    expect(primaryKey(request('/a', { 'x-forwarded-host': 'evil.example', 'x-original-url': '/admin', cookie: 'a=1' }))).toBe(plain)
  })

  it.each([
    { title: 'no Host', host: undefined, url: '/a' },
    { title: 'repeated Host', host: ['a.com', 'b.com'], url: '/a' },
    { title: 'Host with a slash (key forgery)', host: 'a.com/x', url: '/y' },
    { title: 'Host with userinfo', host: 'user@a.com', url: '/a' },
    { title: 'Host with a space', host: 'a.com x', url: '/a' },
    { title: 'absolute-form target', host: 'a.com', url: 'http://b.com/a' },
    { title: 'asterisk-form target', host: 'a.com', url: '*' }
  ])('no key: $title', ({ host, url }) => {
    expect(primaryKey({ url, headers: { host } })).toBeUndefined()
  })

  it('accepts IPv6 literals and finds a mixed-case Host name', () => {
    expect(primaryKey({ url: '/', headers: { Host: '[::1]:8080' } })).toBe('[::1]:8080/')
    expect(primaryKeyFor('EXAMPLE.com', '/x')).toBe('example.com/x')
    expect(primaryKeyFor('[::ABCD]:80', '/x')).toBe('[::abcd]:80/x')
    expect(primaryKeyFor('a.com', '')).toBeUndefined()
  })
})

describe('Vary (secondary key)', () => {
  it('normalises names: lower-case, trimmed, de-duplicated, sorted', () => {
    expect(parseVary(' User-Agent ,accept-encoding, Accept-Encoding,,ACCEPT')).toEqual(['accept', 'accept-encoding', 'user-agent'])
    expect(parseVary(undefined)).toEqual([])
    expect(parseVary('accept, *')).toBe('*')
  })

  it('takes trimmed values, joins repeated lines, and tells absent from empty', () => {
    const req = request('/', { 'accept-encoding': '  gzip, br ', accept: '', 'accept-language': ['en', 'fr'] })
    expect(varyValues(req, ['accept', 'accept-encoding', 'accept-language', 'user-agent'])).toEqual(['', 'gzip, br', 'en, fr', null])
  })

  it('matches a variant only on equal values of its names', () => {
    const selector = { varyNames: ['accept-encoding'], varyValues: ['gzip'] }
    expect(variantMatches(selector, request('/', { 'accept-encoding': 'gzip' }))).toBe(true)
    expect(variantMatches(selector, request('/', { 'Accept-Encoding': ' gzip ' }))).toBe(true)
    expect(variantMatches(selector, request('/', { 'accept-encoding': 'br' }))).toBe(false)
    expect(variantMatches(selector, request('/'))).toBe(false)
    expect(variantMatches({ varyNames: ['accept-encoding'], varyValues: [null] }, request('/'))).toBe(true)
    expect(variantMatches({ varyNames: ['accept-encoding'], varyValues: [null] }, request('/', { 'accept-encoding': '' }))).toBe(false)
  })

  it('secondary key is empty without Vary and distinguishes values otherwise', () => {
    expect(secondaryKey({ varyNames: [], varyValues: [] })).toBe('')
    expect(secondaryKey({ varyNames: ['a'], varyValues: ['x'] })).not.toBe(secondaryKey({ varyNames: ['a'], varyValues: [null] }))
  })
})
