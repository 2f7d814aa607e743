import { reset as resetBreaker } from '../../admin/actions.js';
import { operatorCommand } from '../operator.js';

export const reset = operatorCommand(
  {
    name: 'reset',
    summary: 'close and clear counters for the whole fleet',
    description:
      'Closes the circuit from any state (forced open and disabled included) and clears its counters. A corrupt record is replaced by a closed one under the configuration it still holds.',
  },
  (store, name) => resetBreaker(store, name),
  'reset',
);
