'use strict'

// Installs the runtimes the suite also runs under (Bun, Deno, Next.js) into this folder:
// `node __test__/runtimes/install.js`. The work is scripts/test-prerequisites.js's, which
// `npm test` and .ci/run run first (with the system tools' check): `npm ci` here, Bun's binary
// unpacked from its pinned package when npm leaves it out, and nothing at all when the
// installed tree already matches this folder's package-lock.json.

const { ensureRuntimes } = require('../../scripts/test-prerequisites.js')

console.log(ensureRuntimes())
