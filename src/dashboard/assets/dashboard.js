// The dashboard page: follows the server's event stream and draws a tile per breaker. Every
// breaker name and store text reaches the page through textContent, never as markup; a name is
// shown as its `label` (control characters and bidirectional marks escaped by the server).

import { clearQuestions, renderActions } from './actions.js';

const TOKEN_KEY = 'statebreaker.dashboard.token';
const HISTORY_SHOWN = 5;
const TICK_MS = 200;
const STATE_ORDER = ['closed', 'open', 'halfOpen', 'forcedOpen', 'disabled', 'corrupt'];

const byId = (id) => document.getElementById(id);

const model = {
  breakers: new Map(),
  history: new Map(),
  /** Store clock minus this page's clock, from the `now` of the last message. */
  offset: 0,
  writable: false,
  token: sessionStorage.getItem(TOKEN_KEY),
};
const tiles = new Map();
let ticker;

const storeNow = () => Date.now() + model.offset;

function clockFrom(message) {
  if (typeof message.now === 'number') model.offset = message.now - Date.now();
}

function timeOf(ms) {
  const date = new Date(ms);
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function seconds(ms) {
  return ms >= 10_000 ? `${Math.ceil(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function field(tile, name) {
  return tile.querySelector(`[data-field="${name}"]`);
}

function relevant(tile, name, yes) {
  field(tile, name).parentElement.dataset.relevant = String(yes);
}

function newTile(view) {
  const tile = byId('tile').content.firstElementChild.cloneNode(true);
  tile.querySelector('.name').textContent = view.label;
  tile.querySelector('.name').title = view.label;
  tile.querySelector('.diagram').append(byId('statechart').content.cloneNode(true));
  return tile;
}

function placeTile(name, tile) {
  const names = [...tiles.keys()].sort();
  const next = names.find((other) => other > name);
  byId('tiles').insertBefore(tile, next === undefined ? null : tiles.get(next));
}

function tileFor(view) {
  const name = view.name;
  let tile = tiles.get(name);
  if (tile === undefined) {
    tile = newTile(view);
    placeTile(name, tile);
    tiles.set(name, tile);
  }
  return tile;
}

function highlight(tile, view) {
  for (const group of tile.querySelectorAll('g.state')) {
    const path = group.dataset.state;
    const on = !view.corrupt && (path === view.state || path === view.stateValue);
    group.classList.toggle('on', on);
  }
}

// The fleet's rate over the window against the rule's threshold; -1 is below minimumCalls.
function renderRate(tile, name, view, threshold) {
  const row = field(tile, name).parentElement;
  row.hidden = view.corrupt || threshold === undefined;
  if (row.hidden) return;
  const rates = view.rates;
  const rate = rates === null ? null : rates[name];
  let text = '—';
  if (rate === -1) text = `— (${rates.calls} of ${rates.minimumCalls} calls)`;
  else if (typeof rate === 'number') text = `${rate.toFixed(1)} % / ${threshold} %`;
  field(tile, name).textContent = text;
  field(tile, name).title =
    rate === -1
      ? `below minimumCalls: the rule may trip from ${rates.minimumCalls} counted calls in the window`
      : 'over the window, across the fleet';
  relevant(tile, name, view.state === 'closed');
}

function renderCountdown(tile, view) {
  const box = tile.querySelector('.countdown');
  const open = !view.corrupt && view.state === 'open' && view.openedAt !== null;
  box.hidden = !open;
  if (!open) return;
  const total = view.openDuration;
  const left = Math.max(0, view.openedAt + total - storeNow());
  box.querySelector('.countdown-text').textContent =
    left > 0 ? `half-open in ${seconds(left)}` : 'half-open due (at the next call)';
  const bar = box.querySelector('.countdown-bar');
  bar.max = total;
  bar.value = total - left;
}

function renderHistory(tile, name) {
  const list = tile.querySelector('.history');
  const history = (model.history.get(name) ?? []).slice(-HISTORY_SHOWN).reverse();
  tile.querySelector('.history-title').hidden = history.length === 0;
  const items = history.map((t) => {
    const item = document.createElement('li');
    const time = document.createElement('time');
    time.textContent = timeOf(t.at);
    time.dateTime = new Date(t.at).toISOString();
    const from = document.createElement('span');
    from.className = 'state-name';
    from.dataset.state = t.from;
    from.textContent = t.from;
    const to = document.createElement('span');
    to.className = 'state-name';
    to.dataset.state = t.to;
    to.textContent = t.to;
    const reason = document.createElement('span');
    reason.className = 'why';
    reason.textContent = t.reason;
    item.append(time, ' ', from, ' → ', to, ' ', reason);
    return item;
  });
  list.replaceChildren(...items);
}

function render(view) {
  const tile = tileFor(view);
  const state = view.corrupt ? 'corrupt' : view.state;
  tile.dataset.state = state;
  tile.querySelector('.badge').textContent = view.corrupt ? 'corrupt' : view.stateValue;
  tile.querySelector('.badge').dataset.state = state;
  const problem = tile.querySelector('.corrupt-problem');
  problem.hidden = !view.corrupt;
  problem.textContent = view.corrupt
    ? `${view.problem}${view.key === null ? '' : ` (key ${view.key})`}`
    : '';
  if (view.corrupt) {
    for (const name of ['failures', 'probes', 'successes']) {
      field(tile, name).textContent = '–';
      relevant(tile, name, false);
    }
    tile.querySelector('.reason').textContent = '';
  } else {
    const { config } = view;
    field(tile, 'failures').textContent = `${view.failures} / ${config.failMax}`;
    field(tile, 'probes').textContent = `${view.probes} / ${config.halfOpenMaxCalls}`;
    field(tile, 'successes').textContent = `${view.successes} / ${config.successThreshold}`;
    // Failures count while closed, probes and their successes while half-open.
    relevant(tile, 'failures', view.state === 'closed');
    relevant(tile, 'probes', view.state === 'halfOpen');
    relevant(tile, 'successes', view.state === 'halfOpen');
    const opened =
      view.openedAt !== null && view.state === 'open' ? ` · opened ${timeOf(view.openedAt)}` : '';
    tile.querySelector('.reason').textContent = `last change: ${view.reason}${opened}`;
  }
  renderRate(tile, 'failureRate', view, view.config?.failureRateThreshold);
  renderRate(tile, 'slowCallRate', view, view.config?.slowCallRateThreshold);
  field(tile, 'version').textContent = String(view.version);
  // A corrupt record has no state to show on the statechart.
  tile.querySelector('.diagram').hidden = view.corrupt;
  renderCountdown(tile, view);
  highlight(tile, view);
  renderHistory(tile, view.name);
  renderActions(tile, view, model.writable && model.token !== null, act);
  applyFilter(tile, view);
}

function matches(view, query) {
  if (query === '') return true;
  const state = view.corrupt ? 'corrupt' : `${view.state} ${view.stateValue}`;
  return `${view.name}\n${view.label}\n${state}`.toLowerCase().includes(query);
}

function applyFilter(tile, view) {
  tile.hidden = !matches(view, byId('filter').value.trim().toLowerCase());
}

function refreshAll() {
  for (const view of model.breakers.values()) render(view);
  summarize();
}

function summarize() {
  const counts = new Map();
  for (const view of model.breakers.values()) {
    const state = view.corrupt ? 'corrupt' : view.state;
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  const total = model.breakers.size;
  const summary = byId('summary');
  const parts = STATE_ORDER.filter((s) => counts.has(s)).map((s) => {
    const span = document.createElement('span');
    span.className = 'count';
    span.dataset.state = s;
    span.textContent = `${counts.get(s)} ${s}`;
    return span;
  });
  summary.replaceChildren(`${total} breaker${total === 1 ? '' : 's'}`, ...parts);
  byId('empty').hidden = total > 0;
  const shown = [...tiles.values()].filter((tile) => !tile.hidden).length;
  byId('nomatch').hidden = total === 0 || shown > 0;
  tick();
}

function tick() {
  const anyOpen = [...model.breakers.values()].some((v) => !v.corrupt && v.state === 'open');
  if (anyOpen && ticker === undefined) {
    ticker = setInterval(() => {
      for (const view of model.breakers.values()) renderCountdown(tiles.get(view.name), view);
    }, TICK_MS);
  } else if (!anyOpen && ticker !== undefined) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

function showMode() {
  const unlocked = model.writable && model.token !== null;
  byId('mode').textContent = !model.writable ? 'read-only' : unlocked ? 'operator' : '';
  byId('mode').dataset.mode = !model.writable ? 'read-only' : unlocked ? 'operator' : 'locked';
  byId('unlock').hidden = !model.writable || unlocked;
  byId('lock').hidden = !unlocked;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${model.token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = {};
  try {
    data = text === '' ? {} : JSON.parse(text);
  } catch {
    data = { error: text };
  }
  return { ok: response.ok, status: response.status, data };
}

function forget(message) {
  model.token = null;
  clearQuestions();
  sessionStorage.removeItem(TOKEN_KEY);
  showMode();
  refreshAll();
  showNotice(message);
}

async function act(name, action, tile) {
  const result = tile.querySelector('.action-result');
  result.textContent = '';
  result.dataset.outcome = '';
  let answer;
  try {
    answer = await post(`api/actions/${action}`, { name });
  } catch (error) {
    result.textContent = `not sent: ${error.message}`;
    result.dataset.outcome = 'error';
    return;
  }
  if (answer.status === 401) {
    forget('The token was refused: enter it again.');
    return;
  }
  if (!answer.ok) {
    result.textContent = answer.data.error ?? `refused (${answer.status})`;
    result.dataset.outcome = 'error';
    return;
  }
  const { from, changed, breaker } = answer.data;
  result.textContent = changed
    ? `${action}: ${from ?? 'none'} → ${breaker.state}`
    : `${action}: already ${breaker.state}`;
  result.dataset.outcome = 'ok';
}

/** A word about the token, beside where it is entered. */
function showNotice(message) {
  const notice = byId('notice');
  notice.textContent = message;
  notice.hidden = message === '';
}

/** A problem of the store; the next news from it clears it. */
function showProblem(message) {
  const problem = byId('problem');
  problem.textContent = message;
  problem.hidden = message === '';
}

function setLive(status, text) {
  const live = byId('live');
  live.dataset.status = status;
  live.textContent = text;
  document.body.dataset.live = status;
}

function connect() {
  const source = new EventSource('events');
  source.addEventListener('open', () => setLive('live', 'live'));
  source.addEventListener('error', () => setLive('reconnecting', 'reconnecting…'));
  source.addEventListener('snapshot', (event) => {
    const message = JSON.parse(event.data);
    clockFrom(message);
    model.writable = message.writable;
    model.breakers = new Map(message.breakers.map((view) => [view.name, view]));
    model.history = new Map(Object.entries(message.transitions));
    for (const [name, tile] of tiles) {
      if (!model.breakers.has(name)) {
        tile.remove();
        tiles.delete(name);
      }
    }
    showMode();
    showProblem('');
    refreshAll();
    setLive('live', 'live');
  });
  source.addEventListener('breaker', (event) => {
    const message = JSON.parse(event.data);
    clockFrom(message);
    model.breakers.set(message.breaker.name, message.breaker);
    showProblem('');
    render(message.breaker);
    summarize();
  });
  source.addEventListener('removed', (event) => {
    const message = JSON.parse(event.data);
    clockFrom(message);
    model.breakers.delete(message.name);
    model.history.delete(message.name);
    tiles.get(message.name)?.remove();
    tiles.delete(message.name);
    summarize();
  });
  source.addEventListener('transition', (event) => {
    const message = JSON.parse(event.data);
    clockFrom(message);
    const history = model.history.get(message.name) ?? [];
    history.push(message.transition);
    model.history.set(message.name, history.slice(-HISTORY_SHOWN * 2));
    const tile = tiles.get(message.name);
    if (tile !== undefined) renderHistory(tile, message.name);
  });
  source.addEventListener('problem', (event) => {
    const message = JSON.parse(event.data);
    showProblem(`Store problem: ${message.message}`);
  });
}

byId('filter').addEventListener('input', () => {
  for (const view of model.breakers.values()) applyFilter(tiles.get(view.name), view);
  summarize();
});

byId('unlock').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = byId('token');
  model.token = input.value.trim();
  const answer = await post('api/auth').catch((error) => ({
    ok: false,
    status: 0,
    data: { error: error.message },
  }));
  if (!answer.ok) {
    model.token = null;
    showNotice(
      answer.status === 401 ? 'The token was refused.' : (answer.data.error ?? 'Not unlocked.'),
    );
    return;
  }
  input.value = '';
  sessionStorage.setItem(TOKEN_KEY, model.token);
  showNotice('');
  showMode();
  refreshAll();
});

byId('lock').addEventListener('click', () => forget(''));

connect();
