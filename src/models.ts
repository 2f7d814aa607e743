import {
  type AnyStateMachine,
  type AnyStateNode,
  type AnyTransitionDefinition,
  createActor,
} from 'xstate';
import { breakerMachine } from './machine.js';
import { resolveOptions } from './options.js';

/** One transition of a statechart, flattened for export. */
export interface ModelTransition {
  /** The source state's path below the root, dot-separated (`halfOpen.probing`). */
  readonly source: string;
  /** The target state's path; the source itself for a targetless (internal) transition. */
  readonly target: string;
  /** The event name, or `after <delay>` for a delayed transition. */
  readonly event: string;
  /** The guard as text (`a and b` for `and(['a', 'b'])`), if any. */
  readonly guard: string | undefined;
  /** Named actions, in order. */
  readonly actions: readonly string[];
  /** Whether the transition has no target and so neither exits nor enters a state. */
  readonly internal: boolean;
  /** Whether the transition exits and re-enters its own target (restarting its timers). */
  readonly reenter: boolean;
}

/** Higher-order guards (`and`, `or`, `not`) are functions carrying their operands. */
interface CombinedGuard {
  readonly name: string;
  readonly guards: readonly unknown[];
}

function isCombinedGuard(guard: unknown): guard is CombinedGuard {
  return (
    typeof guard === 'function' &&
    ['and', 'or', 'not'].includes(guard.name) &&
    Array.isArray((guard as { guards?: unknown }).guards)
  );
}

function namedType(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && 'type' in value) {
    const type = (value as { type: unknown }).type;
    if (typeof type === 'string') return type;
  }
  return undefined;
}

/**
 * A guard as text: its name, or its operands joined by the combinator. Inline guard functions
 * have no name a person or tool can use, so they are refused rather than shown as `anonymous`.
 */
export function guardText(guard: unknown): string {
  const named = namedType(guard);
  if (named !== undefined) return named;
  if (isCombinedGuard(guard)) {
    const parts = guard.guards.map((operand) => {
      const text = guardText(operand);
      const grouped = isCombinedGuard(operand) && operand.name !== 'not' && guard.name !== 'not';
      return grouped ? `(${text})` : text;
    });
    return guard.name === 'not' ? `not ${parts[0]}` : parts.join(` ${guard.name} `);
  }
  throw new TypeError(
    `cannot export an inline guard (${String(guard)}): give it a name in setup()`,
  );
}

function actionName(action: unknown): string {
  const named = namedType(action);
  if (named !== undefined) return named;
  throw new TypeError(`cannot export an inline action: give it a name in setup()`);
}

function pathOf(node: AnyStateNode): string {
  return node.path.join('.');
}

function delayName(node: AnyStateNode, transition: AnyTransitionDefinition): string | undefined {
  for (const delayed of node.after) {
    if (delayed.eventType !== transition.eventType) continue;
    const delay = delayed.delay;
    return typeof delay === 'function' ? 'inline delay' : String(delay);
  }
  return undefined;
}

/** Every state node below the root, parents before children, in definition order. */
export function machineStates(machine: AnyStateMachine): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const visit = (node: AnyStateNode) => {
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      out.push(child);
      visit(child);
    }
  };
  visit(machine.root);
  return out;
}

/**
 * Every transition of the machine, walking `machine.root`: event transitions and delayed
 * (`after`) ones, in definition order. Transitions on the root apply from every top-level state.
 */
export function machineTransitions(machine: AnyStateMachine): ModelTransition[] {
  const out: ModelTransition[] = [];
  const collect = (node: AnyStateNode, sources: readonly AnyStateNode[]) => {
    for (const [eventType, list] of node.transitions) {
      for (const transition of list) {
        const delay = delayName(node, transition);
        for (const source of sources) {
          const targets = transition.target ?? [source];
          for (const target of targets) {
            out.push({
              source: pathOf(source),
              target: pathOf(target),
              event: delay === undefined ? eventType : `after ${delay}`,
              guard: transition.guard === undefined ? undefined : guardText(transition.guard),
              actions: transition.actions.map(actionName),
              internal: transition.target === undefined,
              reenter: transition.reenter,
            });
          }
        }
      }
    }
  };
  collect(machine.root, Object.values(machine.root.states) as AnyStateNode[]);
  for (const node of machineStates(machine)) collect(node, [node]);
  return out;
}

function mermaidIds(machine: AnyStateMachine): Map<string, string> {
  const states = machineStates(machine);
  const keyCount = new Map<string, number>();
  for (const node of states) keyCount.set(node.key, (keyCount.get(node.key) ?? 0) + 1);
  const ids = new Map<string, string>();
  // A state's key names it unless another state shares the key; then its path does.
  for (const node of states) {
    ids.set(pathOf(node), keyCount.get(node.key) === 1 ? node.key : node.path.join('_'));
  }
  return ids;
}

/** The transition's label: `EVENT [guard] / action, action`. */
export function transitionLabel(transition: ModelTransition): string {
  let label = transition.event;
  if (transition.guard !== undefined) label += ` [${transition.guard}]`;
  if (transition.actions.length > 0) label += ` / ${transition.actions.join(', ')}`;
  return label;
}

function isWithin(path: string, ancestor: string): boolean {
  return path.startsWith(`${ancestor}.`);
}

/**
 * The machine as a Mermaid `stateDiagram-v2`: every state (compound states as blocks with
 * their initial state), every transition labelled `EVENT [guard] / actions`, delayed
 * transitions as `after <delay>`. Deterministic: definition order throughout.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const ids = mermaidIds(machine);
  const id = (path: string) => ids.get(path) ?? path;
  const transitions = machineTransitions(machine);
  const placed = new Set<ModelTransition>();
  const lines = ['stateDiagram-v2'];
  const initial = (node: AnyStateNode, indent: string) => {
    const target = node.initial?.target[0];
    if (target !== undefined) lines.push(`${indent}[*] --> ${id(pathOf(target))}`);
  };
  // A state whose key another state shares is named by its path and labelled with its key.
  const aliases = (nodes: readonly AnyStateNode[], indent: string) => {
    for (const node of nodes) {
      const key = id(pathOf(node));
      if (key !== node.key) lines.push(`${indent}state "${node.key}" as ${key}`);
    }
  };
  // Mermaid places a state where it is first mentioned, so compound blocks come first and
  // hold the transitions that stay inside them; the others follow at the top level.
  const block = (node: AnyStateNode, indent: string) => {
    const path = pathOf(node);
    const key = id(path);
    const children = Object.values(node.states) as AnyStateNode[];
    if (children.length === 0) return;
    lines.push(`${indent}state ${key} {`);
    aliases(children, `${indent}  `);
    initial(node, `${indent}  `);
    for (const child of children) block(child, `${indent}  `);
    for (const transition of transitions) {
      if (placed.has(transition)) continue;
      if (!isWithin(transition.source, path) || !isWithin(transition.target, path)) continue;
      placed.add(transition);
      lines.push(
        `${indent}  ${id(transition.source)} --> ${id(transition.target)} : ${transitionLabel(transition)}`,
      );
    }
    lines.push(`${indent}}`);
  };
  const top = Object.values(machine.root.states) as AnyStateNode[];
  aliases(top, '  ');
  initial(machine.root, '  ');
  for (const node of top) block(node, '  ');
  for (const transition of transitions) {
    if (placed.has(transition)) continue;
    lines.push(
      `  ${id(transition.source)} --> ${id(transition.target)} : ${transitionLabel(transition)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function quote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}

function isPrimitive(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/** TypeScript source for a config value; combinator guards become calls that `used` records. */
function source(value: unknown, indent: string, used: Set<string>): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }
  if (isCombinedGuard(value)) {
    used.add(value.name);
    const operands = value.guards.map((operand) => source(operand, indent, used));
    return value.name === 'not' ? `not(${operands[0]})` : `${value.name}([${operands.join(', ')}])`;
  }
  if (Array.isArray(value)) {
    if (value.every(isPrimitive))
      return `[${value.map((v) => source(v, indent, used)).join(', ')}]`;
    const inner = `${indent}  `;
    const items = value.map((item) => `${inner}${source(item, inner, used)},`);
    return `[\n${items.join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    const props = entries.map(([key, v]) => {
      const name = IDENTIFIER.test(key) ? key : quote(key);
      return `${inner}${name}: ${source(v, inner, used)},`;
    });
    return `{\n${props.join('\n')}\n${indent}}`;
  }
  throw new TypeError(`cannot export ${typeof value} ${String(value)}: give it a name in setup()`);
}

/**
 * A TypeScript module the Stately editor can import ("Import from code" expects a
 * `createMachine({...})` call): the machine's config with named guards, actions and delays
 * kept as strings, combinator guards as `and([...])` calls, and `context` given as a literal
 * (a context factory cannot be exported).
 */
export function toStatelySource(
  machine: AnyStateMachine,
  context: unknown,
  header: readonly string[] = [],
): string {
  const used = new Set<string>();
  const config: Record<string, unknown> = { ...machine.config, context };
  const body = source(config, '', used);
  const imports = [...used, 'createMachine'].sort();
  const comments = header.map((line) => `// ${line}`);
  return [
    ...comments,
    `import { ${imports.join(', ')} } from 'xstate';`,
    '',
    `export const machine = createMachine(${body});`,
    '',
  ].join('\n');
}

/** Files of `models/`, by name, as `npm run models` writes them. */
export function breakerModels(): Record<string, string> {
  const initial = createActor(breakerMachine, { input: resolveOptions(undefined).config });
  const header = [
    'Generated from src/machine.ts by `npm run models`; do not edit.',
    'Paste into the Stately editor (Import from code). Guards, actions and delays are named;',
    'their code is in src/machine.ts. The context is the initial one with the default options.',
  ];
  return {
    'breaker.stately.ts': toStatelySource(breakerMachine, initial.getSnapshot().context, header),
    'breaker.mmd': toMermaid(breakerMachine),
  };
}
