/**
 * The web console: the VMs with their state and live figures, their controls,
 * and for the selected VM its serial console (xterm.js), its screen and its
 * log. The page is opened as /?token=...; the daemon then keeps the token in
 * an HttpOnly cookie, which the page's requests and sockets carry.
 */
import { Terminal } from '@xterm/xterm';
import { ScreenView, type ScreenMessage } from './screen.js';
import { cloneDialog } from './clone.js';
import { NetworksPanel } from './networks.js';
import { clearIfUnchanged } from './forms.js';

interface Vm {
  name: string;
  state: string;
  reason: string | null;
  memoryBytes: number;
  autostart: boolean;
  restart: string;
  cpuLimit: number | null;
  networks: string[];
  /** The VM's own process while it runs (the daemon's --isolation process), or null. */
  pid: number | null;
  /** The cap on that process's resident set, MiB, and whether the daemon enforces it (process isolation). */
  rssLimitMiB: number;
  rssLimitEnforced: boolean;
}
interface Stats {
  /** 0: fresh; else the age of the VM process's last sample (it was too busy to answer); null: no sample of this run yet. */
  sampleAgeMs: number | null;
  guestInstructionsPerSec: number;
  hostCpuPercent: number;
  vmMemoryBytes: number;
  processRssBytes: number;
  guestSeconds: number;
  cpuLimit: number | null;
  disks: { name: string; readBytes: number; readOps: number; writtenBytes: number; writeOps: number }[];
  nics: { name: string; rxBytes: number; rxFrames: number; txBytes: number; txFrames: number }[];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const STATS_INTERVAL_MS = 2000;

// the token has become a cookie: keep it out of the address bar and history
if (location.search.includes('token=')) history.replaceState(null, '', '/');

const vms = new Map<string, Vm>();
const stats = new Map<string, Stats>();
let selected: string | null = null;

function say(msg: string): void {
  $('message').textContent = msg;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) {
    let msg = `${r.status}`;
    try {
      msg = ((await r.json()) as { error: { message: string } }).error.message;
    } catch {
      // keep the status
    }
    throw new Error(msg);
  }
  return (r.status === 204 ? undefined : await r.json()) as T;
}

function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

const fmtRate = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : `${n}`);
const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
const bytes = (n: number) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} B`);
/** The CPU caps the card offers, percent of one core ('' is none). */
const CPU_CAPS = ['', '10', '25', '50', '75'];

const ACTIONS: [string, string, (v: Vm) => boolean][] = [
  ['start', 'Start', (v) => v.state === 'stopped' || v.state === 'crashed'],
  ['pause', 'Pause', (v) => v.state === 'running'],
  ['resume', 'Resume', (v) => v.state === 'paused'],
  ['reset', 'Reset', (v) => v.state === 'running' || v.state === 'paused'],
  ['powerdown', 'Power off', (v) => v.state === 'running'],
  ['stop', 'Stop', (v) => v.state === 'running' || v.state === 'paused' || v.state === 'starting'],
  ['clone', 'Clone', (v) => v.state === 'stopped' || v.state === 'crashed'],
  ['delete', 'Delete', (v) => v.state === 'stopped' || v.state === 'crashed'],
];

function render(): void {
  const list = $('vms');
  const names = [...vms.keys()].sort();
  if (names.length === 0) list.innerHTML = '<p class="hint">No VMs yet: create one above.</p>';
  else if (list.querySelector('.hint')) list.innerHTML = '';
  for (const el of [...list.querySelectorAll<HTMLElement>('.vm')]) if (!vms.has(el.dataset.name ?? '')) el.remove();
  for (const name of names) {
    const v = vms.get(name) as Vm;
    let card = list.querySelector<HTMLElement>(`.vm[data-name="${CSS.escape(name)}"]`);
    if (!card) {
      card = document.createElement('article');
      card.className = 'vm';
      card.dataset.name = name;
      card.innerHTML = `<div class="top"><span class="name"></span><span class="state"></span></div><div class="figures"></div><div class="net"></div><div class="io"></div><div class="reason"></div><div class="actions"></div><label class="cap">CPU cap <select></select></label>`;
      (card.querySelector('.name') as HTMLElement).textContent = name;
      const cap = card.querySelector('.cap select') as HTMLSelectElement;
      for (const c of CPU_CAPS) cap.append(new Option(c ? `${c}%` : 'none', c));
      cap.addEventListener('change', () => {
        api<Vm>('PATCH', `/api/vms/${encodeURIComponent(name)}`, { cpuLimit: cap.value ? Number(cap.value) : null })
          .then((v) => {
            vms.set(v.name, v);
            render();
          })
          .catch((e: Error) => say(`${name}: ${e.message}`));
      });
      card.querySelector('.top')?.addEventListener('click', () => select(name));
      const actions = card.querySelector('.actions') as HTMLElement;
      for (const [act, label] of ACTIONS) {
        const b = document.createElement('button');
        b.textContent = label;
        b.dataset.act = act;
        b.addEventListener('click', () => void act_(name, act));
        actions.append(b);
      }
      const open = document.createElement('button');
      open.textContent = 'Open';
      open.dataset.act = 'open';
      open.addEventListener('click', () => select(name));
      actions.append(open);
      list.append(card);
    }
    card.classList.toggle('selected', name === selected);
    const st = card.querySelector('.state') as HTMLElement;
    st.textContent = v.state;
    st.className = `state ${v.state}`;
    const s = stats.get(name);
    (card.querySelector('.figures') as HTMLElement).textContent =
      `${mib(v.memoryBytes)} RAM` +
      (!s || (v.state !== 'running' && v.state !== 'paused')
        ? ''
        : s.sampleAgeMs === null // its process has not answered once yet: no figures rather than zeros
          ? ` · no figures yet: the VM is busy${v.pid !== null ? ` · pid ${v.pid}` : ''}`
          : ` · ${fmtRate(s.guestInstructionsPerSec)}instr/s · CPU ${s.hostCpuPercent.toFixed(0)}% · ${v.pid !== null ? `${mib(s.processRssBytes)} RSS${v.rssLimitEnforced ? ` of ${v.rssLimitMiB} MiB` : ''} · pid ${v.pid}` : mib(s.vmMemoryBytes)} · ${s.guestSeconds.toFixed(0)} s${s.sampleAgeMs > 0 ? ` (as of ${(s.sampleAgeMs / 1000).toFixed(0)} s ago: the VM is busy)` : ''}`);
    (card.querySelector('.net') as HTMLElement).textContent = v.networks.length ? `on network ${v.networks.join(', ')}` : '';
    const live = s && (v.state === 'running' || v.state === 'paused');
    (card.querySelector('.io') as HTMLElement).textContent = live
      ? [...s.disks.map((d) => `${d.name} read ${bytes(d.readBytes)} (${d.readOps}) · written ${bytes(d.writtenBytes)} (${d.writeOps})`), ...s.nics.map((n) => `${n.name} rx ${bytes(n.rxBytes)} · tx ${bytes(n.txBytes)}`)].join('\n')
      : '';
    const cap = card.querySelector('.cap select') as HTMLSelectElement;
    const capValue = v.cpuLimit === null ? '' : String(v.cpuLimit);
    if (![...cap.options].some((o) => o.value === capValue)) cap.append(new Option(`${capValue}%`, capValue));
    if (document.activeElement !== cap) cap.value = capValue;
    (card.querySelector('.reason') as HTMLElement).textContent = v.state === 'crashed' || (v.state === 'stopped' && v.reason && v.reason !== 'quit') ? (v.reason ?? '') : '';
    for (const b of card.querySelectorAll<HTMLButtonElement>('.actions button')) {
      const a = ACTIONS.find((x) => x[0] === b.dataset.act);
      if (a) b.disabled = !a[2](v);
    }
  }
}

async function act_(name: string, act: string): Promise<void> {
  say('');
  try {
    if (act === 'clone') {
      const v = await cloneDialog<Vm>(name, api);
      if (!v) return;
      vms.set(v.name, v);
    } else if (act === 'delete') {
      if (!confirm(`Delete VM '${name}' and its folder?`)) return;
      await api('DELETE', `/api/vms/${encodeURIComponent(name)}`);
      if (selected === name) select(null);
    } else {
      vms.set(name, await api<Vm>('POST', `/api/vms/${encodeURIComponent(name)}/${act}`));
      if (act === 'start' && selected !== name) select(name);
    }
    render();
  } catch (e) {
    say(`${name}: ${(e as Error).message}`);
  }
}

// --- the selected VM: console, screen, log ---
const term = new Terminal({ cols: 80, rows: 25, fontSize: 14, convertEol: false, scrollback: 2000 });
term.open($('terminal'));
const screen = new ScreenView($<HTMLCanvasElement>('screen'));
let consoleWs: WebSocket | null = null;
let screenWs: WebSocket | null = null;
let tab = 'console';
const encoder = new TextEncoder();

term.onData((d) => {
  if (consoleWs?.readyState === WebSocket.OPEN) consoleWs.send(encoder.encode(d));
});

function select(name: string | null): void {
  consoleWs?.close();
  screenWs?.close();
  consoleWs = screenWs = null;
  selected = name;
  $('detail').hidden = name === null;
  render();
  if (name === null) return;
  $('detail-name').textContent = name;
  term.reset();
  screen.clear();
  const enc = encodeURIComponent(name);
  const c = new WebSocket(wsUrl(`/api/vms/${enc}/console`));
  c.binaryType = 'arraybuffer';
  c.onmessage = (e) => term.write(new Uint8Array(e.data as ArrayBuffer));
  consoleWs = c;
  const s = new WebSocket(wsUrl(`/api/vms/${enc}/screen`));
  s.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as ScreenMessage | { type: 'error'; message: string };
    if (m.type === 'screen') screen.update(m);
  };
  screenWs = s;
  ($('shot') as HTMLAnchorElement).href = `/api/vms/${enc}/screenshot`;
  ($('shot') as HTMLAnchorElement).download = `${name}.png`;
  showTab(tab);
}

function showTab(t: string): void {
  tab = t;
  for (const b of document.querySelectorAll<HTMLButtonElement>('.tabs button')) b.classList.toggle('active', b.dataset.tab === t);
  for (const id of ['console', 'screen', 'snapshots', 'log']) $(`tab-${id}`).hidden = id !== t;
  if (t === 'console') term.focus();
  if (t === 'snapshots' && selected) void loadSnapshots(selected);
  if (t === 'log' && selected) void loadLog(selected);
}

async function loadLog(name: string): Promise<void> {
  const r = await fetch(`/api/vms/${encodeURIComponent(name)}/log`);
  $('log').textContent = r.ok ? await r.text() : `no log (${r.status})`;
}

for (const b of document.querySelectorAll<HTMLButtonElement>('.tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab ?? 'console'));

const canvas = $<HTMLCanvasElement>('screen');
const sendKey = (e: KeyboardEvent, down: boolean) => {
  e.preventDefault();
  if (screenWs?.readyState === WebSocket.OPEN) screenWs.send(JSON.stringify({ type: 'key', code: e.code, down }));
};
canvas.addEventListener('keydown', (e) => sendKey(e, true));
canvas.addEventListener('keyup', (e) => sendKey(e, false));
canvas.addEventListener('click', () => canvas.focus());
$('cad').addEventListener('click', () => screenWs?.send(JSON.stringify({ type: 'ctrl-alt-del' })));

// the mouse, as PS/2 movement: relative moves, coalesced per animation frame
// (the pointer is locked to the canvas while it has focus in a graphics mode, where the browser allows it)
const mouse = { dx: 0, dy: 0, dz: 0, buttons: 0, pending: false, lastX: NaN, lastY: NaN };
function sendMouse(): void {
  mouse.pending = false;
  if (screenWs?.readyState === WebSocket.OPEN) screenWs.send(JSON.stringify({ type: 'mouse', dx: mouse.dx, dy: mouse.dy, buttons: mouse.buttons, dz: mouse.dz }));
  mouse.dx = mouse.dy = mouse.dz = 0;
}
function queueMouse(): void {
  if (!mouse.pending) {
    mouse.pending = true;
    requestAnimationFrame(sendMouse);
  }
}
canvas.addEventListener('mousemove', (e) => {
  const locked = document.pointerLockElement === canvas;
  // scaled from page pixels to screen pixels, as the canvas is drawn
  const scale = canvas.width / (canvas.getBoundingClientRect().width || canvas.width);
  const dx = locked ? e.movementX : Number.isNaN(mouse.lastX) ? 0 : e.clientX - mouse.lastX;
  const dy = locked ? e.movementY : Number.isNaN(mouse.lastY) ? 0 : e.clientY - mouse.lastY;
  mouse.lastX = e.clientX;
  mouse.lastY = e.clientY;
  mouse.dx += Math.round(dx * scale);
  mouse.dy += Math.round(dy * scale);
  mouse.buttons = e.buttons & 7;
  queueMouse();
});
canvas.addEventListener('mouseleave', () => {
  mouse.lastX = mouse.lastY = NaN;
});
for (const type of ['mousedown', 'mouseup'] as const) {
  canvas.addEventListener(type, (e) => {
    mouse.buttons = e.buttons & 7;
    queueMouse();
  });
}
canvas.addEventListener('wheel', (e) => {
  e.preventDefault();
  mouse.dz += Math.sign(e.deltaY);
  queueMouse();
});
canvas.addEventListener('contextmenu', (e) => e.preventDefault());
canvas.addEventListener('dblclick', () => {
  if (screen.mode === 'graphics' || screen.mode === 'vbe') void canvas.requestPointerLock?.();
});

// --- snapshots: the tree, drawn as an indented list with the current position ---
interface SnapNode {
  id: string;
  name: string;
  description: string;
  parent: string | null;
  createdAt: string;
  hasState: boolean;
  guestSeconds: number;
  sharedWith?: { name: string }[];
}

async function loadSnapshots(name: string): Promise<void> {
  const ul = $('snap-tree');
  let tree: { current: string | null; snapshots: SnapNode[] };
  try {
    tree = await api('GET', `/api/vms/${encodeURIComponent(name)}/snapshots`);
  } catch (e) {
    ul.textContent = (e as Error).message;
    return;
  }
  if (selected !== name) return;
  ul.innerHTML = '';
  if (tree.snapshots.length === 0) ul.innerHTML = '<li class="hint">No snapshots yet.</li>';
  const walk = (parent: string | null, depth: number) => {
    for (const n of tree.snapshots.filter((s) => s.parent === parent)) {
      const li = document.createElement('li');
      li.dataset.snap = n.name;
      li.style.paddingLeft = `${depth * 1.2}rem`;
      if (n.id === tree.current) li.classList.add('current');
      const title = document.createElement('span');
      title.className = 'snap-name';
      title.textContent = n.name;
      const meta = document.createElement('span');
      meta.className = 'snap-meta';
      meta.textContent = `${new Date(n.createdAt).toLocaleString()} · ${n.hasState ? 'running machine' : 'disks only'}${n.description ? ' · ' + n.description : ''}${n.sharedWith?.length ? ` · base of linked clone ${n.sharedWith.map((c) => c.name).join(', ')}` : ''}`;
      const revert = document.createElement('button');
      revert.textContent = 'Revert';
      revert.dataset.act = 'revert';
      revert.addEventListener('click', () => void snapAct(name, 'POST', `${encodeURIComponent(n.name)}/revert`));
      const del = document.createElement('button');
      del.textContent = 'Delete';
      del.dataset.act = 'delete';
      del.addEventListener('click', () => {
        if (confirm(`Delete snapshot '${n.name}'?`)) void snapAct(name, 'DELETE', encodeURIComponent(n.name));
      });
      li.append(title, meta, revert, del);
      ul.append(li);
      walk(n.id, depth + 1);
    }
  };
  walk(null, 0);
}

/** Run one snapshot request and redraw the tree; true when the daemon accepted it. */
async function snapAct(name: string, method: string, path: string, body?: unknown): Promise<boolean> {
  say('');
  let ok = true;
  try {
    await api(method, `/api/vms/${encodeURIComponent(name)}/snapshots${path ? '/' + path : ''}`, body);
  } catch (e) {
    say(`${name}: ${(e as Error).message}`);
    ok = false;
  }
  await loadSnapshots(name);
  return ok;
}

$<HTMLFormElement>('snap-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!selected) return;
  const form = e.target as HTMLFormElement;
  const f = new FormData(form);
  void snapAct(selected, 'POST', '', { name: String(f.get('name')), description: String(f.get('description') ?? '') }).then((ok) => {
    if (ok) clearIfUnchanged(form, f);
  });
});

// --- create: from the default guest, bare firmware, or an uploaded ISO ---
const isoInput = document.querySelector<HTMLInputElement>('#create input[name=iso]') as HTMLInputElement;
const guestSelect = document.querySelector<HTMLSelectElement>('#create select[name=guest]') as HTMLSelectElement;
// the default guest's NIC: user-mode networking or a private network
const networkSelect = document.querySelector<HTMLSelectElement>('#create select[name=network]') as HTMLSelectElement;
const networks = new NetworksPanel(api, say, networkSelect);
function guestChanged(): void {
  isoInput.hidden = guestSelect.value !== 'iso';
  isoInput.required = guestSelect.value === 'iso';
  networkSelect.hidden = guestSelect.value !== 'default';
}
guestSelect.addEventListener('change', guestChanged);

/** Upload an ISO as a new VM; the body is the file itself, streamed by the browser (progress comes on the event stream). */
async function createFromIso(name: string, memoryMiB: number, file: File): Promise<Vm> {
  const r = await fetch(`/api/vms/${encodeURIComponent(name)}/iso?memoryMiB=${memoryMiB}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: file });
  if (!r.ok) {
    let msg = `${r.status}`;
    try {
      msg = ((await r.json()) as { error: { message: string } }).error.message;
    } catch {
      // keep the status
    }
    throw new Error(msg);
  }
  return (await r.json()) as Vm;
}

$<HTMLFormElement>('create').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(e.target as HTMLFormElement);
  const name = String(f.get('name'));
  say('');
  const file = isoInput.files?.[0];
  const network = f.get('guest') === 'default' && f.get('network') ? { network: String(f.get('network')) } : {};
  const made = f.get('guest') === 'iso' && file ? createFromIso(name, Number(f.get('memoryMiB')), file) : api<Vm>('POST', '/api/vms', { name, guest: f.get('guest'), memoryMiB: Number(f.get('memoryMiB')), ...network });
  made
    .then((v) => {
      vms.set(v.name, v);
      clearIfUnchanged(e.target as HTMLFormElement, f);
      guestChanged();
      render();
      select(v.name);
    })
    .catch((err: Error) => say(err.message));
});

// --- long operations: one bar each, gone when done ---
interface Progress {
  vm: string;
  operation: string;
  done: number;
  total: number;
  percent: number;
}
const bars = new Map<string, HTMLElement>();
function showProgress(p: Progress): void {
  const key = `${p.vm}\0${p.operation}`;
  let bar = bars.get(key);
  if (p.percent >= 100) {
    bar?.remove();
    bars.delete(key);
    return;
  }
  if (!bar) {
    bar = document.createElement('p');
    bar.className = 'bar';
    bar.innerHTML = '<progress max="100"></progress> <span></span>';
    $('progress').append(bar);
    bars.set(key, bar);
  }
  (bar.querySelector('progress') as HTMLProgressElement).value = p.percent;
  // byte counts where the operation counts bytes (a total of 1 is a single step)
  const amount = p.total > 1 ? ` (${bytes(p.done)} of ${bytes(p.total)})` : '';
  (bar.querySelector('span') as HTMLElement).textContent = `${p.vm}: ${p.operation} ${p.percent}%${amount}`;
}

// --- the event stream and the live figures ---
function events(): void {
  const ws = new WebSocket(wsUrl('/api/events'));
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as { type: string; vm?: string; vms?: Vm[]; state?: string; reason?: string | null };
    if (m.type === 'hello' && m.vms) {
      vms.clear();
      for (const v of m.vms) vms.set(v.name, v);
      void networks.refresh();
    } else if (m.type === 'networks') {
      void networks.refresh();
    } else if (m.type === 'state' && m.vm) {
      void api<Vm>('GET', `/api/vms/${encodeURIComponent(m.vm)}`).then((v) => {
        vms.set(v.name, v);
        render();
      });
      const v = vms.get(m.vm);
      if (v) Object.assign(v, { state: m.state, reason: m.reason });
      if (v?.networks.length && m.state === 'running') void networks.refresh(); // its switch is up now
    } else if (m.type === 'created' && m.vm) {
      void api<Vm>('GET', `/api/vms/${encodeURIComponent(m.vm)}`).then((v) => {
        vms.set(v.name, v);
        render();
        if (v.networks.length) void networks.refresh();
      });
    } else if (m.type === 'progress' && m.vm) {
      showProgress(m as unknown as Progress);
    } else if (m.type === 'snapshots' && m.vm === selected && tab === 'snapshots') {
      void loadSnapshots(m.vm);
    } else if (m.type === 'deleted' && m.vm) {
      void networks.refresh(); // its networks lose a VM
      vms.delete(m.vm);
      if (selected === m.vm) select(null);
    }
    render();
  };
  ws.onclose = () => {
    say('lost the connection to the daemon; retrying');
    setTimeout(events, 2000);
  };
  ws.onopen = () => say('');
}
events();

setInterval(() => {
  for (const v of vms.values()) {
    if (v.state !== 'running' && v.state !== 'paused') continue;
    void api<Stats>('GET', `/api/vms/${encodeURIComponent(v.name)}/stats`)
      .then((s) => {
        stats.set(v.name, s);
        render();
      })
      .catch(() => {});
  }
}, STATS_INTERVAL_MS);
