// next.config.js: a native addon is loaded by Node at run time, not bundled
// (without this, `next build` fails: "non-ecmascript placeable asset").
module.exports = { serverExternalPackages: ['native-sse'] }
