#!/usr/bin/env node
// The JavaScript and WebAssembly stack of a running tsvm process (a VM that
// seems stuck, a daemon VM process spinning a core), without stopping it.
//
// Usage: node tools/stack.mjs PID [--port N] [--pauses N]
//
// Sends the process SIGUSR1, which makes Node open its inspector on
// 127.0.0.1:N (9229 unless the process was started with --inspect-port),
// then pauses it N times (3), printing each stack, and lets it go on. Wasm
// frames get their locals in hex (a region's: PC, left, then EAX..EDI, see
// wasm/region.ts; only Liftoff frames have them, optimised ones show 0).
// V8 serves the pause at the next interrupt check, which a loop in JS or
// wasm reaches, so a process that never returns to its event loop is caught
// where it spins. The inspector stays open (on loopback) until the process
// ends. docs/vmm.md, "When a VM is stuck".
import WebSocket from 'ws';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const port = opt('--port', 9229);
const pauses = opt('--pauses', 3);
const pid = Number(args[0]);
if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || !Number.isInteger(pauses) || pauses < 1) {
  console.error('usage: node tools/stack.mjs PID [--port N] [--pauses N]   (PID: a Node process of tsvm)');
  process.exit(2);
}
try {
  process.kill(pid, 'SIGUSR1');
} catch (e) {
  console.error(`tools/stack.mjs: cannot signal process ${pid}: ${e.code === 'ESRCH' ? 'no such process' : e.message}`);
  process.exit(1);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let targets = null;
for (let i = 0; i < 50 && targets === null; i++) {
  try {
    targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  } catch {
    await sleep(100);
  }
}
if (!targets?.length) {
  console.error(`tools/stack.mjs: no inspector on 127.0.0.1:${port} after SIGUSR1 (not a Node process, or its inspector is on another --port)`);
  process.exit(1);
}
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  ws.on('open', resolve);
  ws.on('error', reject);
});
let next = 0;
const replies = new Map();
const events = [];
const scripts = new Map(); // scriptId -> URL (Debugger.scriptParsed)
ws.on('message', (data) => {
  const m = JSON.parse(String(data));
  if (m.id !== undefined) replies.get(m.id)?.(m);
  else if (m.method === 'Debugger.scriptParsed') scripts.set(m.params.scriptId, m.params.url);
  else events.push(m);
});
const send = (method, params = {}) =>
  new Promise((resolve) => {
    const id = ++next;
    replies.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
async function paused() {
  for (let t = 0; t < 100; t++) {
    const i = events.findIndex((e) => e.method === 'Debugger.paused');
    if (i >= 0) return events.splice(i, 1)[0].params;
    await sleep(100);
  }
  return null;
}
await send('Debugger.enable');
for (let n = 1; n <= pauses; n++) {
  await send('Debugger.pause');
  const p = await paused();
  if (p === null) {
    console.log(`pause ${n}: the process did not stop within 10 s (blocked outside JavaScript and wasm?)`);
    break;
  }
  console.log(`pause ${n}:`);
  for (const f of p.callFrames) {
    const url = scripts.get(f.location.scriptId) || f.url || '?';
    const where = `${url}:${f.location.lineNumber + 1}:${f.location.columnNumber + 1}`;
    console.log(`  at ${f.functionName || '(anonymous)'} (${where})`);
    if (!url.startsWith('wasm')) continue;
    for (const scope of f.scopeChain) {
      if (scope.type !== 'local') continue;
      const r = await send('Runtime.getProperties', { objectId: scope.object.objectId, ownProperties: true });
      const vals = [];
      for (const v of (r.result?.result ?? []).slice(0, 40)) {
        let x = v.value?.value;
        // a wasm value is an object (subtype wasmvalue) whose `value` property holds the number
        if (x === undefined && v.value?.objectId) {
          const inner = await send('Runtime.getProperties', { objectId: v.value.objectId, ownProperties: true });
          x = inner.result?.result?.find((q) => q.name === 'value')?.value?.value;
        }
        vals.push(`${v.name}=${typeof x === 'number' ? (x >>> 0).toString(16) : (x ?? v.value?.description)}`);
      }
      if (vals.length) console.log(`     locals: ${vals.join(' ')}`);
    }
  }
  await send('Debugger.resume');
  await sleep(200);
}
await send('Debugger.disable');
ws.close();
