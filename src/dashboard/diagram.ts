import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { BreakerEvent } from '../machine.js';
import { machineStates, machineTransitions, transitionLabel } from '../models.js';

// Events an operator sends: they lead from every state to every other, so drawn as arrows they
// would hide the cycle the breaker runs by itself. Their target states get a row of their own.
const OPERATOR_EVENTS: ReadonlySet<string> = new Set<BreakerEvent['type']>([
  'FORCE_OPEN',
  'DISABLE',
  'RESET',
]);

const FONT_SIZE = 11;
// A width per character of the sans-serif face the page uses, generous so that labels fit.
const CHAR_WIDTH = 6.6;
const BOX_HEIGHT = 28;
const SUB_HEIGHT = 22;
const LABEL_HEIGHT = 17;
const PAD = 7;
const GAP = 40;
/** Room between substates for the arrows that join them. */
const INNER_GAP = 28;
const ROW_GAP = 30;
const MARGIN = 4;
const ARC_RISE = 16;

interface Box {
  readonly path: string;
  readonly key: string;
  x: number;
  y: number;
  readonly width: number;
  readonly height: number;
  readonly children: Box[];
  readonly operator: boolean;
}

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly labels: string[];
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function textWidth(text: string): number {
  return text.length * CHAR_WIDTH;
}

function topOf(path: string): string {
  return path.split('.')[0] as string;
}

function box(node: AnyStateNode, operator: boolean): Box {
  const path = node.path.join('.');
  const children = (Object.values(node.states) as AnyStateNode[]).map((child) => box(child, false));
  if (children.length === 0) {
    return {
      path,
      key: node.key,
      x: 0,
      y: 0,
      width: Math.max(60, textWidth(node.key) + 2 * PAD + 4),
      height: node.path.length > 1 ? SUB_HEIGHT : BOX_HEIGHT,
      children,
      operator,
    };
  }
  const inner =
    children.reduce((sum, child) => sum + child.width, 0) +
    INNER_GAP * (children.length - 1) +
    2 * PAD;
  const sub = Math.max(...children.map((child) => child.height));
  return {
    path,
    key: node.key,
    x: 0,
    y: 0,
    width: Math.max(inner, textWidth(node.key) + 2 * PAD),
    height: LABEL_HEIGHT + sub + PAD,
    children,
    operator,
  };
}

function placeRow(boxes: Box[], y: number, totalWidth: number): void {
  const rowWidth = boxes.reduce((sum, b) => sum + b.width, 0) + GAP * (boxes.length - 1);
  let x = MARGIN + (totalWidth - rowWidth) / 2;
  for (const b of boxes) {
    b.x = x;
    b.y = y;
    x += b.width + GAP;
    if (b.children.length === 0) continue;
    const inner =
      b.children.reduce((sum, child) => sum + child.width, 0) + INNER_GAP * (b.children.length - 1);
    let cx = b.x + (b.width - inner) / 2;
    for (const child of b.children) {
      child.x = cx;
      child.y = b.y + LABEL_HEIGHT;
      cx += child.width + INNER_GAP;
    }
  }
}

function rowWidth(boxes: readonly Box[]): number {
  return boxes.reduce((sum, b) => sum + b.width, 0) + GAP * Math.max(0, boxes.length - 1);
}

/** Edges between distinct states, one per (from, to) pair, carrying every label that makes it. */
function collectEdges(
  machine: AnyStateMachine,
  endpoint: (path: string) => string | undefined,
): Edge[] {
  const edges = new Map<string, Edge>();
  for (const transition of machineTransitions(machine)) {
    if (OPERATOR_EVENTS.has(transition.event)) continue;
    const from = endpoint(transition.source);
    const to = endpoint(transition.target);
    if (from === undefined || to === undefined || from === to) continue;
    const id = `${from}>${to}`;
    const edge = edges.get(id) ?? { from, to, labels: [] };
    edge.labels.push(`${transition.source} → ${transition.target}: ${transitionLabel(transition)}`);
    edges.set(id, edge);
  }
  return [...edges.values()];
}

function arrowHead(tipX: number, tipY: number, fromX: number, fromY: number): string {
  const angle = Math.atan2(tipY - fromY, tipX - fromX);
  const size = 6;
  const left = [
    tipX - size * Math.cos(angle - Math.PI / 7),
    tipY - size * Math.sin(angle - Math.PI / 7),
  ];
  const right = [
    tipX - size * Math.cos(angle + Math.PI / 7),
    tipY - size * Math.sin(angle + Math.PI / 7),
  ];
  const points = [[tipX, tipY], left, right].map((p) => p.map((n) => n.toFixed(1)).join(','));
  return `<polygon class="head" points="${points.join(' ')}"/>`;
}

function title(labels: readonly string[]): string {
  return `<title>${escapeXml(labels.join('\n'))}</title>`;
}

/**
 * An edge between boxes of one row: neighbours left to right by a straight arrow above the
 * middle, right to left below it; boxes further apart by an arc over the row.
 */
function rowEdge(edge: Edge, a: Box, b: Box, index: Map<string, number>): string {
  const i = index.get(a.path) as number;
  const j = index.get(b.path) as number;
  const midA = a.y + BOX_HEIGHT / 2;
  if (Math.abs(i - j) === 1) {
    const forward = j > i;
    const y = midA + (forward ? -5 : 5);
    const x1 = forward ? a.x + a.width : a.x;
    const x2 = forward ? b.x : b.x + b.width;
    const line = `<line class="edge" x1="${x1.toFixed(1)}" y1="${y}" x2="${x2.toFixed(1)}" y2="${y}"/>`;
    return `<g class="transition">${title(edge.labels)}${line}${arrowHead(x2, y, x1, y)}</g>`;
  }
  const x1 = a.x + a.width / 2;
  const x2 = b.x + b.width / 2;
  const y = a.y;
  const cy = y - ARC_RISE * 2;
  const path = `<path class="edge" d="M${x1.toFixed(1)},${y} Q${((x1 + x2) / 2).toFixed(1)},${cy} ${x2.toFixed(1)},${y}"/>`;
  return `<g class="transition">${title(edge.labels)}${path}${arrowHead(x2, y, (x1 + x2) / 2, cy)}</g>`;
}

function innerEdge(edge: Edge, a: Box, b: Box): string {
  const forward = b.x > a.x;
  const y = a.y + SUB_HEIGHT / 2 + (forward ? -4 : 4);
  const x1 = forward ? a.x + a.width : a.x;
  const x2 = forward ? b.x : b.x + b.width;
  const line = `<line class="edge" x1="${x1.toFixed(1)}" y1="${y}" x2="${x2.toFixed(1)}" y2="${y}"/>`;
  return `<g class="transition">${title(edge.labels)}${line}${arrowHead(x2, y, x1, y)}</g>`;
}

function stateGroup(b: Box, describe: (b: Box) => string): string {
  const kind = b.children.length > 0 ? 'compound' : b.path.includes('.') ? 'sub' : 'simple';
  const classes = ['state', kind, ...(b.operator ? ['operator'] : [])].join(' ');
  const rect = `<rect x="${b.x.toFixed(1)}" y="${b.y}" width="${b.width.toFixed(1)}" height="${b.height}" rx="${kind === 'sub' ? 5 : 7}"/>`;
  const textY =
    kind === 'compound' ? b.y + LABEL_HEIGHT - 5 : b.y + b.height / 2 + FONT_SIZE / 2 - 1.5;
  const label = `<text x="${(b.x + b.width / 2).toFixed(1)}" y="${textY.toFixed(1)}">${escapeXml(b.key)}</text>`;
  const children = b.children.map((child) => stateGroup(child, describe)).join('');
  return `<g class="${classes}" data-state="${escapeXml(b.path)}"><title>${escapeXml(describe(b))}</title>${rect}${label}${children}</g>`;
}

/**
 * The statechart as an SVG diagram, laid out from the machine's own definition: the top-level
 * states the breaker moves through by itself on one row, joined by their transitions (collapsed
 * per pair of states; the full labels show as tooltips), compound states with their substates
 * inside, and the states only an operator enters on a row below. Every state is a `<g>` with
 * `data-state` set to its path (`closed`, `halfOpen.probing`), for the page to highlight.
 */
export function statechartSvg(machine: AnyStateMachine): string {
  const topNodes = Object.values(machine.root.states) as AnyStateNode[];
  const transitions = machineTransitions(machine);
  const automatic = new Set<string>();
  for (const t of transitions) {
    if (OPERATOR_EVENTS.has(t.event) || topOf(t.source) === topOf(t.target)) continue;
    automatic.add(topOf(t.source));
    automatic.add(topOf(t.target));
  }
  const initial = machine.root.initial?.target[0]?.key;
  const cycle = topNodes
    .filter((node) => automatic.has(node.key) || node.key === initial)
    .map((node) => box(node, false));
  const manual = topNodes
    .filter((node) => !automatic.has(node.key) && node.key !== initial)
    .map((node) => box(node, true));

  const width = Math.max(rowWidth(cycle), rowWidth(manual));
  const top = MARGIN + ARC_RISE * 2;
  placeRow(cycle, top, width);
  const cycleHeight = Math.max(...cycle.map((b) => b.height));
  placeRow(manual, top + cycleHeight + ROW_GAP, width);
  const height = top + cycleHeight + (manual.length > 0 ? ROW_GAP + BOX_HEIGHT : 0) + MARGIN;

  const index = new Map(cycle.map((b, i) => [b.path, i]));
  const byPath = new Map<string, Box>();
  for (const b of [...cycle, ...manual]) {
    byPath.set(b.path, b);
    for (const child of b.children) byPath.set(child.path, child);
  }

  const parts: string[] = [];
  for (const edge of collectEdges(machine, (path) =>
    index.has(topOf(path)) ? topOf(path) : undefined,
  )) {
    parts.push(rowEdge(edge, byPath.get(edge.from) as Box, byPath.get(edge.to) as Box, index));
  }
  for (const parent of cycle) {
    if (parent.children.length === 0) continue;
    const inside = (path: string) =>
      path.startsWith(`${parent.path}.`) && byPath.has(path) ? path : undefined;
    for (const edge of collectEdges(machine, inside)) {
      parts.push(innerEdge(edge, byPath.get(edge.from) as Box, byPath.get(edge.to) as Box));
    }
  }

  const entering = (b: Box) => {
    const sources = new Set<string>();
    const events = new Set<string>();
    for (const t of transitions) {
      if (t.target !== b.path || t.source === b.path) continue;
      sources.add(topOf(t.source));
      events.add(t.event);
    }
    const from = [...sources].filter((s) => s !== b.path);
    const how = `${b.path}: entered by ${[...events].join(', ')}`;
    return from.length > 0 ? `${how} from ${from.join(', ')}` : b.path;
  };
  const states = [...cycle, ...manual].map((b) => stateGroup(b, entering)).join('');
  const first = manual[0];
  // What sets the lower row apart, where there is room for it.
  const caption =
    first !== undefined && first.x - 8 - MARGIN >= textWidth('operator')
      ? `<text class="caption" x="${(first.x - 8).toFixed(1)}" y="${(first.y + BOX_HEIGHT / 2 + 4).toFixed(1)}">operator</text>`
      : '';
  const svgWidth = (width + 2 * MARGIN).toFixed(0);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${svgWidth} ${height.toFixed(0)}" ` +
    `role="img" aria-label="statechart of the breaker">${states}${parts.join('')}${caption}</svg>`
  );
}

/** The state paths the diagram draws, for the page and tests: every state of the machine. */
export function diagramStates(machine: AnyStateMachine): string[] {
  return machineStates(machine).map((node) => node.path.join('.'));
}
