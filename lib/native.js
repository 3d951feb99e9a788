'use strict'

// The native addon, loaded once for every module here. napi-rs's generated loader is not used
// (`napi build --no-js`): it tries some 28 package names, asks for Node's diagnostic report
// where Deno refuses it, and buries the reason under advice about an npm bug. This tries, in
// order, and stops at the first that is there:
//
//   1. the file NAPI_RS_NATIVE_LIBRARY_PATH names, when it is set, and then nothing else: the
//      suite loads the addon built with `test-hooks` this way (__test__/hooks.test.js);
//   2. native-sse.<platform>.node at the package root: a build from source (`npm install` in a
//      clone runs `napi build --platform`);
//   3. the binary package native-sse-<platform>, for this platform only: an install from the
//      registry, where npm installs the one optional dependency whose os/cpu/libc match.
//
// When none loads, the error tells apart no binary here (ERR_SSE_NO_BINARY) from one that is
// there and did not load (ERR_SSE_BINARY_LOAD_FAILED, with the dynamic loader's reason), and
// says what to do.

const fs = require('node:fs')
const path = require('node:path')
const { napi } = require('../package.json')
const { PLATFORMS, currentPlatform } = require('./platforms')
const { sseError, useErrorTable } = require('./errors')

const ROOT = path.join(__dirname, '..')
const OVERRIDE = 'NAPI_RS_NATIVE_LIBRARY_PATH'
const BUILD_FROM_SOURCE = 'To build it from source, install Rust (https://rustup.rs), clone the repository and run `npm install` there (it builds the addon with cargo), then install that folder: `npm install /path/to/native-sse`.'

/** An environment variable, or undefined where reading it is refused (Deno without --allow-env). */
function env (name) {
  try {
    return process.env[name] || undefined
  } catch {
    return undefined
  }
}

/**
 * Loads the addon. Returns `{ binding }`, or `{ missing, failures }`: the lookups that found
 * nothing (their errors) and the files that were there but did not load (`{ file, error }`).
 */
function load (platform, shipped) {
  const missing = []
  const failures = []
  const attempt = (file) => {
    try {
      const binding = require(file)
      if (typeof binding?.errorCodes !== 'function' || typeof binding.NativeHub !== 'function') {
        throw new Error('it loaded, but it is not native-sse\'s addon (it has no NativeHub or errorCodes)')
      }
      return binding
    } catch (error) {
      failures.push({ file, error })
      return null
    }
  }

  const override = env(OVERRIDE)
  if (override !== undefined) return { binding: attempt(path.resolve(override)), missing, failures, override }

  const local = path.join(ROOT, `${napi.binaryName}.${platform}.node`)
  if (fs.existsSync(local)) {
    const binding = attempt(local)
    if (binding !== null) return { binding, missing, failures }
  }
  if (shipped !== undefined) {
    let file = null
    try {
      file = require.resolve(shipped.packageName)
    } catch (error) {
      missing.push(error)
    }
    if (file !== null) {
      const binding = attempt(file)
      if (binding !== null) return { binding, missing, failures }
    }
  }
  return { binding: null, missing, failures }
}

/** The first line of what went wrong loading `file`, naming the file. */
function reasonOf ({ file, error }) {
  const message = String(error?.message ?? error).split('\n')[0]
  return message.includes(file) ? message : `${file}: ${message}`
}

/** The error for a process that could not load the addon. */
function loadError (platform, shipped, { missing, failures, override }) {
  const list = PLATFORMS.map((p) => p.platform).join(', ')
  let error
  if (override !== undefined) {
    const [{ file, error: cause }] = failures
    const what = fs.existsSync(file) ? `which did not load: ${reasonOf(failures[0])}` : 'which does not exist'
    error = sseError(Error, 'ERR_SSE_BINARY_LOAD_FAILED',
      `native-sse's binary for ${platform} did not load: ${OVERRIDE} names ${file}, ${what}. ` +
      `Unset ${OVERRIDE} to load the binary native-sse installs, or point it at a native-sse addon built for ${platform}.`, cause)
  } else if (failures.length > 0) {
    const needs = platform.endsWith('-gnu')
      ? `The ${platform} binary needs glibc 2.17 or newer; on Alpine and other musl systems it is the -musl package that must be installed. `
      : platform.endsWith('-musl') ? `The ${platform} binary is for musl (Alpine); a Node built for glibc needs the -gnu package. ` : ''
    error = sseError(Error, 'ERR_SSE_BINARY_LOAD_FAILED',
      `native-sse's binary for ${platform} was found but did not load: ${failures.map(reasonOf).join('; ')}. ` +
      `${needs}Reinstall native-sse on this machine (a node_modules copied from another system holds that system's binary), or ${lowerFirst(BUILD_FROM_SOURCE)}`,
      failures[failures.length - 1].error)
  } else if (shipped === undefined) {
    error = sseError(Error, 'ERR_SSE_NO_BINARY',
      `native-sse has no prebuilt binary for ${platform} (Node ${process.version}). ` +
      `Prebuilt binaries exist for: ${list}. ${BUILD_FROM_SOURCE}`)
  } else {
    error = sseError(Error, 'ERR_SSE_NO_BINARY',
      `native-sse's binary for ${platform} is not installed: the package ${shipped.packageName} is missing. ` +
      'npm installs it as an optional dependency, so it is left out by --omit=optional or --no-optional, by a lock file made on another platform, ' +
      `or when node_modules was copied from another platform. Reinstall on this machine (\`npm install ${shipped.packageName}\` adds it), or ${lowerFirst(BUILD_FROM_SOURCE)}`, missing[0])
  }
  error.platform = platform
  error.platforms = PLATFORMS.map((p) => p.platform)
  return error
}

function lowerFirst (text) {
  return text.charAt(0).toLowerCase() + text.slice(1)
}

const platform = currentPlatform()
const shipped = PLATFORMS.find((p) => p.platform === platform)
const loaded = load(platform, shipped)
if (loaded.binding === null) throw loadError(platform, shipped, loaded)
const binding = loaded.binding
useErrorTable(binding.errorCodes())

module.exports = binding
