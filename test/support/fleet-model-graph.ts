import { breakerMachine, type CircuitState } from 'statebreaker';
import type { AnyStateNode } from 'xstate';

/** `from→to` for every change of top-level state the statechart can make in one transition. */
export type TopLevelEdges = ReadonlySet<string>;

function topLevelOf(node: AnyStateNode): CircuitState | undefined {
  return node.path[0] as CircuitState | undefined;
}

// The machine's actions that start a new generation without leaving the top-level state.
const GENERATION_ACTIONS = new Set(['resetCounts']);

function movesGeneration(actions: readonly unknown[]): boolean {
  return actions.some((action) => {
    const type = typeof action === 'string' ? action : (action as { type?: unknown }).type;
    return typeof type === 'string' && GENERATION_ACTIONS.has(type);
  });
}

/**
 * The top-level edges of `breakerMachine`, read from the machine itself (its state nodes and
 * their transitions, delayed ones included), so that the property checks observed states
 * against the statechart as built, not against a list that could drift from it. A transition
 * declared on the root applies from every top-level state. Self-loops are left out: a breaker
 * reports a state change only when its top-level state changes, except those that move the
 * generation.
 */
export function topLevelEdges(): TopLevelEdges {
  const root = breakerMachine.root;
  const tops = Object.values(root.states) as AnyStateNode[];
  const edges = new Set<string>();
  const visit = (node: AnyStateNode) => {
    const sources = node === root ? tops.map(topLevelOf) : [topLevelOf(node)];
    for (const transitions of node.transitions.values()) {
      for (const transition of transitions) {
        // A targetless transition stays where it is (a reset in closed).
        const targets = transition.target ?? (node === root ? [] : [node]);
        for (const target of targets) {
          const to = topLevelOf(target);
          for (const from of sources) {
            if (from === undefined || to === undefined) continue;
            // A self-loop that moves the generation (a reset in closed fences the calls admitted
            // before it) is a step of a walk, though no change is reported for it.
            if (from !== to || movesGeneration(transition.actions)) edges.add(`${from}→${to}`);
          }
        }
      }
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) visit(child);
  };
  visit(root);
  return edges;
}

/**
 * Whether some walk of exactly `length` top-level transitions leads from `from` to `to` (a
 * walk of 0 stays where it is: a rollback to the very state it left).
 * Every change of top-level state adds one to the generation, so an instance that adopts a
 * record `length` generations ahead skipped exactly that many transitions; they must form a
 * walk of the machine. A walk may pass through `to` or `from` on the way (open→halfOpen→open).
 */
export function walkExists(
  edges: TopLevelEdges,
  from: CircuitState,
  to: CircuitState,
  length: number,
): boolean {
  if (!Number.isInteger(length) || length < 0) return false;
  let frontier = new Set<string>([from]);
  for (let step = 0; step < length; step++) {
    const next = new Set<string>();
    for (const edge of edges) {
      const [a, b] = edge.split('→') as [string, string];
      if (frontier.has(a)) next.add(b);
    }
    frontier = next;
  }
  return frontier.has(to);
}
