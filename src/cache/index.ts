// The cache core's public surface for the proxy: pure functions and two classes, no I/O.
export { evaluate, requestBypassesCache, isUnsafeMethod, STORABLE_STATUSES } from './policy.js'
export type { Decision, EvaluateOptions, NotStorable, NotStorableReason, Storable } from './policy.js'
export {
  primaryKey, primaryKeyFor, parseVary, varyValues, secondaryKey, variantMatches,
  UNKEYED_OVERRIDE_HEADERS, UNKEYED_HOST_HEADERS
} from './key.js'
export type { KeyedRequest, VariantSelector } from './key.js'
export { createEntry, entryBytes } from './entry.js'
export type { CachedEntry, CreateEntryInput } from './entry.js'
export { ResponseCache, DEFAULT_MAX_OBJECT_BYTES } from './store.js'
export type { CacheHit, CacheStats, EvictionListener, EvictionReason, ResponseCacheOptions } from './store.js'
export { isNotModified, notModifiedHeaders, parseEntityTags } from './conditional.js'
export { invalidationTargets } from './invalidation.js'
export type { InvalidationTarget } from './invalidation.js'
export { Coalescer, CoalesceTimeoutError, COALESCE_TIMEOUT_CODE } from './coalescer.js'
export { PassMemory, isResponseVerdict } from './pass-memory.js'
export type { PassMemoryOptions } from './pass-memory.js'
export type { CacheRequest, CacheResponse, HeaderMap } from './types.js'
export { RevisionLiveness } from './coherence.js'
export type { RevisionCell, PoolRevisions } from './coherence.js'
export { purgeFilterProblem, purgeMatcher } from '../purge-filter.js'
export type { PurgeFilter } from '../purge-filter.js'
