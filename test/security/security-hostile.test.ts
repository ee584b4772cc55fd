// The hostile-input corpus (test/runtime/hostile-input.test.ts) again, over HTTPS against a domain that
// demands WS-Security authentication: every message authenticated as the user its Caller names.
// The same faults, the same untouched root and canaries, handles bound to identities.
process.env.METAOS_HOSTILE_TRANSPORT = 'https-auth'
await import('../runtime/hostile-input.test.js')
