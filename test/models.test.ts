import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { and, createActor, createMachine, not, or, setup } from 'xstate';
import { breakerMachine, DEFAULTS } from '../src/index.js';
import { breakerModels, machineTransitions, toMermaid, toStatelySource } from '../src/models.js';

const modelsDir = fileURLToPath(new URL('../models/', import.meta.url));

// An independent reading of the machine: its raw config, not the StateNode tree the exporter
// walks, so that a bug in the exporter's walk cannot hide in both.
interface ConfigState {
  on?: Record<string, unknown>;
  after?: Record<string, unknown>;
  states?: Record<string, ConfigState>;
  initial?: string;
}

function asList(value: unknown): Record<string, unknown>[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => (typeof item === 'string' ? { target: item } : item));
}

function configGuard(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  const operands = (guard as { guards?: unknown[] }).guards;
  if (typeof guard === 'function' && guard.name === 'and' && Array.isArray(operands)) {
    return operands.map(configGuard).join(' and ');
  }
  if (typeof guard === 'function' && guard.name === 'or' && Array.isArray(operands)) {
    return operands.map(configGuard).join(' or ');
  }
  throw new Error(`this test does not know guard ${String(guard)}`);
}

function resolveTarget(target: unknown, parent: string[], self: string[]): string[] {
  if (target === undefined) return self;
  if (typeof target !== 'string') throw new Error(`unexpected target ${String(target)}`);
  if (target.startsWith('#breaker.')) return target.slice('#breaker.'.length).split('.');
  return [...parent, ...target.split('.')];
}

/** `source --> target : label` for every transition in the config, by state key. */
function configTransitionLines(): string[] {
  const lines: string[] = [];
  const root = breakerMachine.config as ConfigState;
  const emit = (
    sources: string[][],
    parent: string[],
    on: ConfigState['on'],
    after: ConfigState['after'],
  ) => {
    const groups = [
      ...Object.entries(on ?? {}),
      ...Object.entries(after ?? {}).map(([delay, t]) => [`after ${delay}`, t] as const),
    ];
    for (const [event, value] of groups) {
      for (const transition of asList(value)) {
        for (const source of sources) {
          const target = resolveTarget(transition.target, parent, source);
          const guard = configGuard(transition.guard);
          const actionList = transition.actions === undefined ? [] : asList(transition.actions);
          const actions = actionList.map((a) => (typeof a === 'object' ? a.target : a));
          let label = event;
          if (guard !== undefined) label += ` [${guard}]`;
          if (actions.length > 0) label += ` / ${actions.join(', ')}`;
          lines.push(`${source.at(-1)} --> ${target.at(-1)} : ${label}`);
        }
      }
    }
  };
  const visit = (states: Record<string, ConfigState>, parent: string[]) => {
    for (const [key, state] of Object.entries(states)) {
      const path = [...parent, key];
      emit([path], parent, state.on, state.after);
      if (state.states !== undefined) visit(state.states, path);
    }
  };
  const top = Object.keys(root.states ?? {}).map((key) => [key]);
  emit(top, [], root.on, root.after);
  visit(root.states ?? {}, []);
  return lines.sort();
}

function configStateKeys(): string[] {
  const keys: string[] = [];
  const visit = (states: Record<string, ConfigState> | undefined) => {
    for (const [key, state] of Object.entries(states ?? {})) {
      keys.push(key);
      visit(state.states);
    }
  };
  visit((breakerMachine.config as ConfigState).states);
  return keys.sort();
}

const ARROW = /^\s*(\S+) --> (\S+)(?: : (.*))?$/;

function mermaidTransitionLines(mermaid: string): string[] {
  return mermaid
    .split('\n')
    .map((line) => ARROW.exec(line))
    .filter((match): match is RegExpExecArray => match !== null && match[1] !== '[*]')
    .map((match) => `${match[1]} --> ${match[2]} : ${match[3]}`)
    .sort();
}

function mermaidStates(mermaid: string): string[] {
  const states = new Set<string>();
  for (const line of mermaid.split('\n')) {
    const arrow = ARROW.exec(line);
    if (arrow !== null) {
      for (const id of [arrow[1], arrow[2]]) if (id !== undefined && id !== '[*]') states.add(id);
    }
    const block = /^\s*state (\S+) \{$/.exec(line);
    if (block?.[1] !== undefined) states.add(block[1]);
  }
  return [...states].sort();
}

/** Lines of the `state <name> { ... }` block, without its braces. */
function blockOf(mermaid: string, name: string): string[] {
  const lines = mermaid.split('\n');
  const start = lines.findIndex((line) => line.trim() === `state ${name} {`);
  if (start < 0) return [];
  const indent = lines[start]?.match(/^\s*/)?.[0] ?? '';
  const end = lines.findIndex((line, i) => i > start && line === `${indent}}`);
  return lines.slice(start + 1, end).map((line) => line.trim());
}

describe('models/', () => {
  it('is up to date with src/machine.ts (run `npm run models` when this fails)', () => {
    const expected = breakerModels();
    const onDisk = readdirSync(modelsDir).sort();
    expect(onDisk).toEqual(Object.keys(expected).sort());
    for (const [name, text] of Object.entries(expected)) {
      expect(readFileSync(`${modelsDir}${name}`, 'utf8'), `models/${name}`).toBe(text);
    }
  });

  it('is deterministic', () => {
    expect(breakerModels()).toEqual(breakerModels());
  });
});

describe('models/breaker.mmd', () => {
  const mermaid = readFileSync(`${modelsDir}breaker.mmd`, 'utf8');

  it('is a stateDiagram-v2 with every state of the machine', () => {
    expect(mermaid.startsWith('stateDiagram-v2\n')).toBe(true);
    const keys = configStateKeys();
    expect(new Set(keys).size).toBe(keys.length);
    expect(mermaidStates(mermaid)).toEqual(keys);
  });

  it('has every transition of the machine, with its event, guard and actions, and no other', () => {
    const expected = configTransitionLines();
    expect(expected.length).toBeGreaterThan(20);
    expect(mermaidTransitionLines(mermaid)).toEqual(expected);
  });

  it('notices a transition missing from the diagram', () => {
    const lines = mermaid.split('\n');
    const dropped = lines.filter((line) => !line.includes('after probeLease')).join('\n');
    expect(dropped).not.toBe(mermaid);
    expect(mermaidTransitionLines(dropped)).not.toEqual(configTransitionLines());
  });

  it('nests halfOpen with its initial state, and marks the initial state', () => {
    expect(mermaid).toMatch(/^ {2}\[\*\] --> closed$/m);
    const block = blockOf(mermaid, 'halfOpen');
    expect(block[0]).toBe('[*] --> waiting');
    expect(block).toContain('waiting --> probing : PROBE_ACQUIRED [probeSlotFree] / addProbe');
    expect(block.every((line) => !/--> (open|closed)\b/.test(line))).toBe(true);
  });
});

describe('models/breaker.stately.ts', () => {
  it('imports from xstate and builds the same machine, with the default initial context', async () => {
    const text = readFileSync(`${modelsDir}breaker.stately.ts`, 'utf8');
    expect(text).toContain("import { and, createMachine, or } from 'xstate';");
    expect(text).toContain('createMachine({');
    const { machine } = await import('../models/breaker.stately.js');
    expect(machine.id).toBe(breakerMachine.id);
    expect(machineTransitions(machine)).toEqual(machineTransitions(breakerMachine));
    expect(toMermaid(machine)).toBe(toMermaid(breakerMachine));
    const initial = createActor(breakerMachine, {
      input: { ...DEFAULTS, probeLease: DEFAULTS.resetTimeout },
    }).getSnapshot().context;
    expect(machine.config.context).toEqual(initial);
  });
});

describe('the exporter on other machines', () => {
  const machine = setup({
    guards: { a: () => true, b: () => true, c: () => true },
    actions: { log: () => {} },
  }).createMachine({
    id: 'm',
    initial: 'one',
    on: { STOP: '.two' },
    states: {
      one: {
        initial: 'x',
        states: { x: { on: { GO: { target: 'x', guard: or(['a', not('b')]) } } } },
        on: { NEXT: { target: 'two', guard: and(['a', or(['b', 'c'])]), actions: 'log' } },
      },
      two: { initial: 'x', states: { x: {} }, after: { 100: 'one' } },
    },
  });

  it('renders combinator guards, duplicate keys, root transitions and numeric delays', () => {
    const mermaid = toMermaid(machine);
    expect(mermaid).toContain('state "x" as one_x');
    expect(mermaid).toContain('one_x --> one_x : GO [a or not b]');
    expect(mermaid).toContain('one --> two : NEXT [a and (b or c)] / log');
    expect(mermaid).toContain('one --> two : STOP');
    expect(mermaid).toContain('two --> two : STOP');
    expect(mermaid).toContain('two --> one : after 100');
    const source = toStatelySource(machine, {});
    expect(source).toContain("import { and, createMachine, not, or } from 'xstate';");
    expect(source).toContain("guard: or(['a', not('b')]),");
    expect(source).toContain("guard: and(['a', or(['b', 'c'])]),");
  });

  it('refuses inline guards, which have no name to show', () => {
    const inline = createMachine({
      initial: 'a',
      states: { a: { on: { E: { guard: () => true, target: 'b' } } }, b: {} },
    });
    expect(() => toMermaid(inline)).toThrow(/inline guard/);
  });
});
