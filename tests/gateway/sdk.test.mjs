// The E2B JS SDK (npm package e2b, pinned in sdk.sh) against real daemons:
// rollout-pool + rolloutd + rollout-gateway started by sdk.sh. Run with node --test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const e2b = require(process.env.E2B_SDK_PATH);
const { Sandbox, CommandExitError, TimeoutError, NotFoundError, SandboxNotFoundError, AuthenticationError,
	FileNotFoundError, SandboxError } = e2b;
const API = process.env.E2B_API_URL;
const KEY = process.env.E2B_API_KEY;

async function raw(method, path, { body, headers = {} } = {}) {
	const r = await fetch(API + path, { method, body, headers: { 'X-API-Key': KEY, ...headers } });
	const text = await r.text();
	return { status: r.status, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
}

test('create, run with onStdout, exit codes, env vars, cwd', async () => {
	const sbx = await Sandbox.create({ envs: { GREETING: 'hi' }, metadata: { suite: 'basic' } });
	try {
		const chunks = [];
		const r = await sbx.commands.run('echo "$GREETING out"; echo oops >&2', { onStdout: (d) => chunks.push(d) });
		assert.equal(r.exitCode, 0);
		assert.equal(r.stdout, 'hi out\n');
		assert.equal(r.stderr, 'oops\n');
		assert.deepEqual(chunks, ['hi out\n']);
		const e = await sbx.commands.run('echo partial; exit 7').catch((x) => x);
		assert.ok(e instanceof CommandExitError, `expected CommandExitError, got ${e}`);
		assert.equal(e.exitCode, 7);
		assert.equal(e.stdout, 'partial\n');
		// Large output comes through whole (in several data events).
		const big = await sbx.commands.run("head -c 200000 /dev/zero | tr '\\0' a");
		assert.equal(big.stdout.length, 200000);
		assert.equal(big.stdout, 'a'.repeat(200000));
		const env = await sbx.commands.run('echo $A-$GREETING', { envs: { A: 'x' } });
		assert.equal(env.stdout, 'x-hi\n');
		await sbx.files.makeDir('/tmp/work/sub');
		const pwd = await sbx.commands.run('pwd', { cwd: '/tmp/work/sub' });
		assert.equal(pwd.stdout, '/tmp/work/sub\n');
		const info = await sbx.getInfo();
		assert.equal(info.sandboxId, sbx.sandboxId);
		assert.equal(info.metadata.suite, 'basic');
		assert.equal(await sbx.isRunning(), true);
	} finally {
		assert.equal(await sbx.kill(), true);
	}
});

test('background commands, list, stdin, kill', async () => {
	const sbx = await Sandbox.create();
	try {
		const h = await sbx.commands.run('sleep 0.3; echo bg-done', { background: true });
		assert.ok(h.pid > 0);
		const listed = await sbx.commands.list();
		assert.ok(listed.some((p) => p.pid === h.pid && p.cmd === '/bin/bash'), JSON.stringify(listed));
		const r = await h.wait();
		assert.equal(r.stdout, 'bg-done\n');
		assert.equal(await sbx.commands.kill(h.pid), false, 'an ended command is not found');
		assert.equal(await h.kill(), false);
		// A running command is killed for real, and the sandbox lives on. It never ends by
		// itself, so its first line reaching onStdout proves the output is streamed.
		let seen;
		const up = new Promise((resolve) => { seen = resolve; });
		const long = await sbx.commands.run('echo started; while :; do sleep 0.05; done',
			{ background: true, onStdout: (d) => seen(d), timeoutMs: 20000 });
		assert.equal(await up, 'started\n');
		assert.equal(await long.kill(), true);
		const le = await long.wait().catch((x) => x);
		assert.ok(le instanceof CommandExitError, String(le));
		assert.match(le.error ?? '', /signal: (killed|KILL)/);
		assert.equal(le.stdout, 'started\n');
		assert.equal((await sbx.commands.run('echo alive')).stdout, 'alive\n');
		// SIGTERM reaches the command's own handler.
		let ready;
		const trapped = new Promise((resolve) => { ready = resolve; });
		const t = await sbx.commands.run(
			"trap 'echo bye; exit 5' TERM; echo armed; while :; do sleep 0.05; done 2>/dev/null",
			{ background: true, onStdout: (d) => { if (d === 'armed\n') ready(); }, timeoutMs: 20000 });
		await trapped;
		// The SDK itself only sends SIGKILL; SIGTERM goes through envd's RPC as other clients send it.
		const sig = await fetch(`${process.env.E2B_SANDBOX_URL}/process.Process/SendSignal`, {
			method: 'POST',
			headers: { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1',
				'E2b-Sandbox-Id': sbx.sandboxId, 'X-Access-Token': sbx.envdAccessToken },
			body: JSON.stringify({ process: { pid: t.pid }, signal: 'SIGNAL_SIGTERM' }),
		});
		assert.equal(sig.status, 200, await sig.text());
		const te = await t.wait().catch((x) => x);
		assert.ok(te instanceof CommandExitError, String(te));
		assert.equal(te.exitCode, 5);
		assert.equal(te.stdout, 'armed\nbye\n');
		// stdin: the command runs when stdin is closed, with what was sent.
		const c = await sbx.commands.run('tr a-z A-Z', { background: true, stdin: true });
		await sbx.commands.sendStdin(c.pid, 'hello ');
		await sbx.commands.sendStdin(c.pid, 'world');
		await sbx.commands.closeStdin(c.pid);
		assert.equal((await c.wait()).stdout, 'HELLO WORLD');
		// A command still waiting for stdin is killed for real.
		const w = await sbx.commands.run('cat', { background: true, stdin: true });
		assert.equal(await w.kill(), true);
		const we = await w.wait().catch((x) => x);
		assert.ok(we instanceof CommandExitError);
		// Reconnect to a running command from its pid.
		const bg = await sbx.commands.run('sleep 0.2; echo again', { background: true });
		const again = await sbx.commands.connect(bg.pid);
		assert.equal((await again.wait()).stdout, 'again\n');
	} finally {
		await sbx.kill();
	}
});

test('files: write, read, list, stat, rename, remove, errors', async () => {
	const sbx = await Sandbox.create();
	try {
		const w = await sbx.files.write('/tmp/dir/a.txt', 'alpha\n');
		assert.equal(w.path, '/tmp/dir/a.txt');
		assert.equal(await sbx.files.read('/tmp/dir/a.txt'), 'alpha\n');
		const bin = new Uint8Array([0, 1, 2, 255, 254, 10]);
		await sbx.files.write('rel.bin', bin.buffer);
		assert.deepEqual(await sbx.files.read('/tmp/rel.bin', { format: 'bytes' }), bin);
		const large = 'x'.repeat(150000) + 'end';
		await sbx.files.write('/tmp/large.txt', large);
		assert.equal(await sbx.files.read('/tmp/large.txt'), large);
		await sbx.files.write([{ path: '/tmp/dir/b.txt', data: 'beta' }, { path: '/tmp/dir/c.txt', data: 'gamma' }]);
		const names = (await sbx.files.list('/tmp/dir')).map((e) => e.name).sort();
		assert.deepEqual(names, ['a.txt', 'b.txt', 'c.txt']);
		const st = await sbx.files.getInfo('/tmp/dir/b.txt');
		assert.equal(st.type, 'file');
		assert.equal(st.size, 4);
		assert.equal((await sbx.files.getInfo('/tmp/dir')).type, 'dir');
		assert.equal(await sbx.files.exists('/tmp/dir/nope'), false);
		assert.equal(await sbx.files.makeDir('/tmp/dir/new'), true);
		assert.equal(await sbx.files.makeDir('/tmp/dir/new'), false, 'exists already');
		const moved = await sbx.files.rename('/tmp/dir/c.txt', '/tmp/other/c2.txt');
		assert.equal(moved.path, '/tmp/other/c2.txt');
		assert.equal(await sbx.files.read('/tmp/other/c2.txt'), 'gamma');
		await sbx.files.remove('/tmp/dir');
		assert.equal(await sbx.files.exists('/tmp/dir'), false);
		const missing = await sbx.files.read('/tmp/missing.txt').catch((x) => x);
		assert.ok(missing instanceof FileNotFoundError, String(missing));
		const lm = await sbx.files.list('/tmp/missing-dir').catch((x) => x);
		assert.ok(lm instanceof NotFoundError, String(lm));
		// The file written through the API is what a command sees.
		assert.equal((await sbx.commands.run('cat /tmp/rel.bin | od -An -tu1 | tr -s " "')).stdout.trim(), '0 1 2 255 254 10');
	} finally {
		await sbx.kill();
	}
});

test('list with metadata filters, connect from a second client, setTimeout', async () => {
	const a = await Sandbox.create({ metadata: { owner: 'alice', run: 'r1' } });
	const b = await Sandbox.create({ metadata: { owner: 'bob', run: 'r1' } });
	try {
		const byOwner = await Sandbox.list({ query: { metadata: { owner: 'alice' } } }).nextItems();
		assert.deepEqual(byOwner.map((s) => s.sandboxId), [a.sandboxId]);
		const byRun = await Sandbox.list({ query: { metadata: { run: 'r1' } } }).nextItems();
		assert.deepEqual(byRun.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort());
		assert.equal(byRun[0].state, 'running');
		const paused = await Sandbox.list({ query: { state: ['paused'] } }).nextItems();
		assert.equal(paused.length, 0);
		// A second client, as another process would: only the id is shared.
		await a.files.write('/tmp/shared.txt', 'from a');
		const a2 = await Sandbox.connect(a.sandboxId);
		assert.equal((await a2.commands.run('cat /tmp/shared.txt')).stdout, 'from a');
		// setTimeout: the sandbox is killed when it passes, as E2B does.
		await b.setTimeout(1000);
		const end = (await b.getInfo()).endAt.getTime();
		assert.ok(end - Date.now() <= 1100, `endAt ${end - Date.now()} ms away`);
		await new Promise((r) => setTimeout(r, 2500));
		assert.equal(await b.isRunning(), false);
		const gone = await Sandbox.getInfo(b.sandboxId).catch((x) => x);
		assert.ok(gone instanceof SandboxNotFoundError, String(gone));
		await a.setTimeout(60_000); // extended: still alive
		assert.equal(await a.isRunning(), true);
	} finally {
		await a.kill();
		await b.kill();
	}
});

test('errors the SDK expects', async () => {
	// Bad API key: the SDK's authentication error.
	const auth = await Sandbox.create({ apiKey: 'wrong-key-000' }).catch((x) => x);
	assert.ok(auth instanceof AuthenticationError, String(auth));
	// Unknown sandbox: not-found errors, and kill() answers false.
	const nf = await Sandbox.connect('inosuchsandbox000000').catch((x) => x);
	assert.ok(nf instanceof SandboxNotFoundError, String(nf));
	assert.equal(await Sandbox.kill('inosuchsandbox000000'), false);
	const sbx = await Sandbox.create();
	const id = sbx.sandboxId;
	// A command past its timeout: rolloutd TIMEOUT -> the SDK's TimeoutError.
	const to = await sbx.commands.run('sleep 5', { timeoutMs: 300 }).catch((x) => x);
	assert.ok(to instanceof TimeoutError, String(to));
	// Unsupported features answer E2B's error shape.
	const p = await sbx.pause().catch((x) => x);
	assert.ok(p instanceof SandboxError && /501/.test(p.message), String(p));
	const snap = await raw('POST', `/sandboxes/${id}/snapshots`, { body: '{}' });
	assert.equal(snap.status, 501);
	assert.equal(snap.json.code, 501);
	// A wrong access token is refused by the in-sandbox API.
	const bad = await fetch(API + '/files?path=/tmp/x', { headers: { 'E2b-Sandbox-Id': id, 'X-Access-Token': 'nope' } });
	assert.equal(bad.status, 401);
	// Bad JSON, oversized bodies, unknown routes: clear errors, nothing else disturbed.
	const bj = await raw('POST', '/v2/sandboxes', { body: '{"templateID": ', headers: { 'Content-Type': 'application/json' } });
	assert.equal(bj.status, 400);
	assert.equal(bj.json.code, 400);
	const big = await raw('POST', '/v2/sandboxes', { body: 'x'.repeat(3 << 20) }).catch((x) => ({ status: 413, err: x }));
	assert.equal(big.status, 413);
	// The same without Content-Length (chunked): read, dropped, then refused.
	const chunked = await fetch(API + '/v2/sandboxes', { method: 'POST', headers: { 'X-API-Key': KEY },
		body: new Blob(['x'.repeat(700000)]).stream(), duplex: 'half' });
	assert.equal(chunked.status, 413);
	const unk = await raw('GET', '/no/such/route');
	assert.equal(unk.status, 404);
	const tmpl = await Sandbox.create('no-such-template').catch((x) => x);
	assert.ok(tmpl instanceof SandboxError && /404/.test(tmpl.message), String(tmpl));
	// A slow client holding a half-sent request does not slow anyone else.
	const slow = net.connect(new URL(API).port, new URL(API).hostname);
	await new Promise((r) => slow.once('connect', r));
	slow.write('POST /v2/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"tem');
	const t0 = Date.now();
	assert.equal((await sbx.commands.run('echo still-served')).stdout, 'still-served\n');
	assert.ok(Date.now() - t0 < 2000);
	slow.destroy();
	// Killed: commands and files answer the SDK's not-running errors.
	assert.equal(await sbx.kill(), true);
	assert.equal(await sbx.kill(), false);
	const after = await sbx.commands.run('true').catch((x) => x);
	assert.ok(after instanceof SandboxNotFoundError, String(after));
	assert.equal(await sbx.isRunning(), false);
});

test('32 sandboxes used concurrently from one process, 20 commands each', async () => {
	const N = Number(process.env.GW_CONCURRENT || 32), STEPS = 20;
	const t0 = Date.now();
	const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
		const sbx = await Sandbox.create({ metadata: { suite: 'concurrent' } });
		try {
			for (let s = 0; s < STEPS; s++) {
				const r = await sbx.commands.run(`echo ${i}-${s}`);
				assert.equal(r.stdout, `${i}-${s}\n`);
			}
			return STEPS;
		} finally {
			await sbx.kill();
		}
	}));
	assert.equal(results.reduce((a, b) => a + b, 0), N * STEPS);
	console.log(`# ${N} sandboxes x ${STEPS} commands in ${Date.now() - t0} ms`);
	const left = await Sandbox.list().nextItems();
	assert.deepEqual(left.map((s) => s.sandboxId), [], 'no sandbox left after');
});

test('SANDBOX_LOST (pool killed mid-command) is an infrastructure error, not the command failing', { skip: !process.env.GW_POOL_PID }, async () => {
	const sbx = await Sandbox.create();
	const h = await sbx.commands.run('sleep 30', { background: true });
	process.kill(Number(process.env.GW_POOL_PID), 'SIGKILL');
	const e = await h.wait().catch((x) => x);
	assert.ok(!(e instanceof CommandExitError), `must not look like the command failing: ${e}`);
	assert.ok(e instanceof SandboxError && /infra_failed/.test(e.message), String(e));
	await sbx.kill();
});
