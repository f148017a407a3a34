/**
 * The private networks panel: the networks the daemon knows (declared in its
 * networks.json, or named by a VM's NIC) with their DHCP server and their
 * VMs; add one (with a DHCP subnet or without), delete one no VM uses. The
 * create form's network choice is kept in step with the list.
 */

import { clearIfUnchanged } from './forms.js';

type Api = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export interface Network {
  name: string;
  dhcp: string | null;
  vms: string[];
  served: boolean;
}

export class NetworksPanel {
  private _list: Network[] = [];

  constructor(
    private readonly _api: Api,
    private readonly _say: (msg: string) => void,
    /** The create form's network choice: user-mode first, then one option per network. */
    private readonly _choice: HTMLSelectElement,
  ) {
    const form = document.getElementById('net-form') as HTMLFormElement;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const dhcp = String(f.get('dhcp') ?? '').trim();
      this._say('');
      this._api<Network>('POST', '/api/networks', { name: String(f.get('name')), dhcp: dhcp || null })
        .then(() => {
          clearIfUnchanged(form, f);
          return this.refresh();
        })
        .catch((err: Error) => this._say(`network: ${err.message}`));
    });
  }

  /** Load the list again (on start, and when the event stream says networks or VMs changed). */
  async refresh(): Promise<void> {
    try {
      this._list = (await this._api<{ networks: Network[] }>('GET', '/api/networks')).networks;
    } catch (e) {
      this._say(`networks: ${(e as Error).message}`);
      return;
    }
    this._render();
  }

  private _render(): void {
    const ul = document.getElementById('net-list') as HTMLElement;
    ul.innerHTML = '';
    if (this._list.length === 0) ul.innerHTML = '<li class="hint">None yet. VMs on one private network reach each other: add one here (with a DHCP subnet such as 10.0.3.0/24, or none) and choose it when you create a VM.</li>';
    for (const n of this._list) {
      const li = document.createElement('li');
      li.dataset.net = n.name;
      const name = document.createElement('span');
      name.className = 'net-name';
      name.textContent = n.name;
      const meta = document.createElement('span');
      meta.className = 'net-meta';
      meta.textContent = `${n.dhcp ? `DHCP ${n.dhcp}` : 'no DHCP'} · ${n.vms.length ? `VMs: ${n.vms.join(', ')}` : 'no VMs'}${n.served ? ' · switch up' : ''}`;
      const del = document.createElement('button');
      del.textContent = 'Delete';
      del.dataset.act = 'delete';
      del.disabled = n.vms.length > 0;
      del.title = n.vms.length ? 'VMs use it: delete them first' : 'delete this network';
      del.addEventListener('click', () => {
        if (!confirm(`Delete network '${n.name}'?`)) return;
        this._say('');
        this._api('DELETE', `/api/networks/${encodeURIComponent(n.name)}`)
          .catch((err: Error) => this._say(`network ${n.name}: ${err.message}`))
          .finally(() => void this.refresh());
      });
      li.append(name, meta, del);
      ul.append(li);
    }
    // the create form's choice: keep what is chosen if it is still there
    const keep = this._choice.value;
    this._choice.length = 1;
    for (const n of this._list) this._choice.append(new Option(`network ${n.name}`, n.name));
    this._choice.value = this._list.some((n) => n.name === keep) ? keep : '';
  }
}
