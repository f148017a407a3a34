/**
 * The clone dialog: the new name, a full copy or a linked clone, and for a
 * linked clone the snapshot of the source it is based on (a new one by
 * default). A refusal stays in the dialog, so the user can change the name
 * or the choice and try again.
 */

type Api = <T>(method: string, path: string, body?: unknown) => Promise<T>;

const field = <T extends Element>(form: HTMLFormElement, name: string) => form.elements.namedItem(name) as unknown as T;

/** Ask for a clone of `src` and make it; resolves with the new VM, or null when cancelled. */
export async function cloneDialog<V>(src: string, api: Api): Promise<V | null> {
  const dlg = document.getElementById('clone-dialog') as HTMLDialogElement;
  const form = dlg.querySelector('form') as HTMLFormElement;
  const name = field<HTMLInputElement>(form, 'name');
  const linked = field<HTMLInputElement>(form, 'linked');
  const snapshot = field<HTMLSelectElement>(form, 'snapshot');
  const error = dlg.querySelector('.error') as HTMLElement;
  const enc = encodeURIComponent(src);
  (dlg.querySelector('.src') as HTMLElement).textContent = src;
  name.value = `${src}-copy`;
  linked.checked = false;
  snapshot.disabled = true;
  snapshot.length = 1; // keep "a new snapshot"
  error.textContent = '';
  linked.onchange = () => (snapshot.disabled = !linked.checked);
  try {
    const tree = await api<{ snapshots: { name: string }[] }>('GET', `/api/vms/${enc}/snapshots`);
    for (const n of tree.snapshots) snapshot.append(new Option(n.name, n.name));
  } catch {
    // no snapshots to offer; a new one still works
  }
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.onclose = () => resolve(null);
    (dlg.querySelector('button[value=cancel]') as HTMLButtonElement).onclick = () => dlg.close();
    form.onsubmit = (e) => {
      e.preventDefault();
      error.textContent = '';
      const body = linked.checked ? { name: name.value, linked: true, ...(snapshot.value ? { snapshot: snapshot.value } : {}) } : { name: name.value };
      api<V>('POST', `/api/vms/${enc}/clone`, body)
        .then((v) => {
          resolve(v);
          dlg.close();
        })
        .catch((err: Error) => (error.textContent = err.message));
    };
  });
}
