// rollout-bench gateway, the E2B JS SDK side: create + commands.run("true") + kill, and
// commands.run("true") on one live sandbox. Prints one JSON line of samples (ms).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { Sandbox } = require(process.env.E2B_SDK_PATH);
const n = Number(process.argv[2] || 200), warm = 10;

const crk = [], run = [];
for (let i = 0; i < warm + n; i++) {
	const t = performance.now();
	const s = await Sandbox.create();
	await s.commands.run('true');
	await s.kill();
	if (i >= warm) crk.push(performance.now() - t);
}
const sbx = await Sandbox.create();
for (let i = 0; i < warm + n; i++) {
	const t = performance.now();
	await sbx.commands.run('true');
	if (i >= warm) run.push(performance.now() - t);
}
await sbx.kill();
console.log(JSON.stringify({ create_run_kill_ms: crk, run_ms: run }));
