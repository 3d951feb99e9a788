'use strict'

// The addon's own exports (binding.d.ts types them), as lib/native.js loads it. Written by
// hand: the addon is built with `napi build --no-js`, and lib/native.js is the loader. The
// package does not ship this file (package.json `files`); the tests and fixtures that take
// the native surface directly require it.

module.exports = require('./lib/native')
