// Intentionally empty: `npm run build` turns it into dist/bench/empty-node, a single executable built exactly
// like the plugin. Its start-up time is the floor that benchmarks of the real binaries are measured against.
