// The operator's buttons on a tile. Each action acts on the whole fleet, so a click asks first,
// saying what the action does, and only "Yes" sends it.

const ACTIONS = [
  {
    action: 'forceOpen',
    label: 'Force open',
    effect: 'Every call is rejected until a reset.',
  },
  {
    action: 'disable',
    label: 'Disable',
    effect: 'Every call goes through and nothing is counted until a reset.',
  },
  {
    action: 'reset',
    label: 'Reset',
    effect: 'The circuit closes and its counters are cleared.',
  },
];

/** The action each breaker's tile asks the operator to confirm, by breaker name. */
const asking = new Map();

/** Forgets every question asked (the operator locked the page). */
export function clearQuestions() {
  asking.clear();
}

/**
 * Draws the buttons of `view`'s tile: none while locked, else the actions a record allows, or
 * the question one of them asks. `act(name, action, tile)` sends a confirmed action.
 */
export function renderActions(tile, view, unlocked, act) {
  const box = tile.querySelector('.actions');
  box.hidden = !unlocked;
  if (!unlocked) {
    box.replaceChildren();
    delete box.dataset.offered;
    return;
  }
  // A corrupt record can only be replaced by a reset.
  const offered = view.corrupt ? ACTIONS.filter((a) => a.action === 'reset') : ACTIONS;
  const asked = offered.find((a) => a.action === asking.get(view.name));
  const shown = asked === undefined ? offered.map((a) => a.action).join() : `?${asked.action}`;
  if (box.dataset.offered === shown) return;
  box.dataset.offered = shown;
  const again = () => renderActions(tile, view, unlocked, act);
  if (asked !== undefined) {
    box.replaceChildren(...question(view, asked, again, () => act(view.name, asked.action, tile)));
    return;
  }
  box.replaceChildren(
    ...offered.map(({ action, label }) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.action = action;
      button.textContent = label;
      button.addEventListener('click', () => {
        asking.set(view.name, action);
        again();
      });
      return button;
    }),
  );
}

/** The question a fleet-wide action asks, with its Yes and Cancel buttons. */
function question({ name, label }, { action, label: verb, effect }, again, send) {
  const text = document.createElement('span');
  text.className = 'confirm-text';
  text.textContent = `${verb} "${label}" for the whole fleet? ${effect}`;
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.dataset.confirm = action;
  yes.textContent = `Yes, ${verb.toLowerCase()}`;
  yes.addEventListener('click', () => {
    asking.delete(name);
    again();
    send();
  });
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'cancel';
  cancel.textContent = 'Cancel';
  cancel.addEventListener('click', () => {
    asking.delete(name);
    again();
  });
  return [text, yes, cancel];
}
