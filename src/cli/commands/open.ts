import { forceOpen } from '../../admin/actions.js';
import { CREATE_OPTION, operatorCommand } from '../operator.js';

export const open = operatorCommand(
  {
    name: 'open',
    summary: 'force open for the whole fleet (until reset)',
    description:
      'Every instance rejects every call until `statebreaker reset NAME`. Written through the statechart under the configuration the record holds, and confirmed by Redis before this returns.',
    options: CREATE_OPTION,
  },
  (store, name, create) => forceOpen(store, name, create === undefined ? {} : { create }),
  'forced open',
);
