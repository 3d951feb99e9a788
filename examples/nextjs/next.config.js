// native-sse is a native addon: Next.js must load it with Node's require at run time, not bundle it.
module.exports = { serverExternalPackages: ['native-sse'] }
