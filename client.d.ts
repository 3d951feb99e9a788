// For TypeScript's `moduleResolution: node10` (the default of `module: commonjs`), which does
// not read package.json `exports`: `native-sse/client` resolves to this file, and the types
// are the ones `exports` gives every other resolution.
export * from './client.mjs'
