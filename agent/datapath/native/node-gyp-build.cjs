// Stands in for node-gyp-build in the agent's bundle (hack/build/build.ts aliases it): netlink asks it
// for its prebuilt binary, which the agent keeps beside its executable (load.ts).
const { loadNative } = require('./load.ts');
module.exports = () => loadNative('netlink');
