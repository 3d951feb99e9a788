'use strict'

// The size a browser app pays for native-sse/client: bundled and minified with esbuild (ESM,
// ES2022, which every current browser runs; lower targets turn private fields into WeakMaps),
// then gzip -9 and brotli. `node bench/client-size.js` prints the figures; client.test.js
// holds the gzip size to its budget.

const path = require('node:path')
const zlib = require('node:zlib')
const esbuild = require('esbuild')

const ENTRY = path.join(__dirname, '..', 'lib', 'client', 'index.mjs')

/** The minified bundle, the files in it, and its raw, gzip and brotli sizes in bytes. */
async function clientSize () {
  const result = await esbuild.build({
    entryPoints: [ENTRY], bundle: true, minify: true, format: 'esm', target: 'es2022', write: false, metafile: true
  })
  const code = Buffer.from(result.outputFiles[0].contents)
  return {
    code,
    /** The files bundled, relative to the working directory. */
    inputs: Object.keys(result.metafile.inputs),
    minified: code.length,
    gzip: zlib.gzipSync(code, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(code).length
  }
}

if (require.main === module) {
  clientSize().then(({ minified, gzip, brotli }) => {
    console.log(`native-sse/client: ${minified} B minified, ${gzip} B gzip, ${brotli} B brotli`)
  })
}

module.exports = { clientSize }
