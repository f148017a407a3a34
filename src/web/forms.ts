/**
 * Clearing a form after its request succeeds. The event stream often redraws the page before the
 * request's own reply comes, so the user (or a test) may already be typing the next entry: clear
 * the fields only if they still hold what was sent.
 */
export function clearIfUnchanged(form: HTMLFormElement, sent: FormData): void {
  const now = new FormData(form);
  for (const [k, v] of sent) if (typeof v === 'string' && now.get(k) !== v) return;
  form.reset();
}
