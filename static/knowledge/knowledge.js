/*
 * Sources page of the knowledge base: poll the status endpoint while anything is pending or
 * ingesting, and move the progress bars (a real percentage from the worker, not a spinner).
 */
const table = document.getElementById('sources');

async function poll() {
  let data;
  try {
    const response = await fetch(table.dataset.statusUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!response.ok) return;
    data = await response.json();
  } catch (err) {
    window.setTimeout(poll, 3000);
    return;
  }
  for (const s of data.sources) {
    const row = table.querySelector('tr[data-source="' + s.id + '"]');
    if (!row) continue;
    const label = row.querySelector('[data-role="label"]');
    const bar = row.querySelector('[data-role="bar"]');
    const error = row.querySelector('[data-role="error"]');
    label.textContent = s.status_label;
    label.className = 'kb-badge kb-' + s.status;
    bar.value = s.progress;
    bar.textContent = s.progress + '%';
    bar.hidden = !(s.status === 'pending' || s.status === 'ingesting');
    error.textContent = s.error;
    error.hidden = !s.error;
    row.querySelector('[data-role="chunks"]').textContent = String(s.chunks);
  }
  if (data.busy) window.setTimeout(poll, 1000);
}

if (table) poll();
