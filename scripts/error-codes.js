'use strict'

// Writes the `SseErrorCode` union of index.d.ts from the one table of error codes, the
// binding's `errorCodes()` (native_sse_core::ErrorCode, crates/core/src/error.rs), between its
// two marker lines: `npm run build` runs it after the addon is built, so a code added to the
// table reaches the typings by the same build, and CI's check that the build leaves the
// committed files unchanged catches a table and a union that disagree.
//
//   node scripts/error-codes.js           rewrites index.d.ts (when it differs)
//   node scripts/error-codes.js --check   writes nothing; exits 1 when index.d.ts differs

const fs = require('node:fs')
const path = require('node:path')

const FILE = path.join(__dirname, '..', 'index.d.ts')
const BEGIN = '// BEGIN error codes: written by scripts/error-codes.js from the error table'
const END = '// END error codes'

/** The lines between the markers for these codes, in the table's order. */
function unionLines (codes) {
  return ['export type SseErrorCode =', ...codes.map((code) => `  | '${code}'`)]
}

/** `text` with the union between the markers made from `codes`; throws without the markers. */
function withUnion (text, codes) {
  const newline = text.includes('\r\n') ? '\r\n' : '\n'
  const lines = text.split(newline)
  const begin = lines.indexOf(BEGIN)
  const end = lines.indexOf(END)
  if (begin < 0 || end < begin) throw new Error(`index.d.ts has no '${BEGIN}' ... '${END}' block`)
  return [...lines.slice(0, begin + 1), ...unionLines(codes), ...lines.slice(end)].join(newline)
}

/** The members of the union between the markers, as written in `text`. */
function unionOf (text) {
  const block = text.slice(text.indexOf(BEGIN), text.indexOf(END))
  return [...block.matchAll(/\|\s*'([^']+)'/g)].map((match) => match[1])
}

function tableCodes () {
  const { errorCodes } = require('../lib/native')
  return errorCodes().map((entry) => entry.code)
}

function main () {
  const text = fs.readFileSync(FILE, 'utf8')
  const written = withUnion(text, tableCodes())
  if (written === text) return
  if (process.argv.includes('--check')) {
    console.error('index.d.ts: the SseErrorCode union differs from the error table; run `node scripts/error-codes.js`')
    process.exitCode = 1
    return
  }
  fs.writeFileSync(FILE, written)
  console.log('index.d.ts: SseErrorCode written from the error table')
}

if (require.main === module) main()

module.exports = { unionOf, withUnion, BEGIN, END }
