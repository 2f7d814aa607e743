import { disable as disableBreaker } from '../../admin/actions.js';
import { CREATE_OPTION, operatorCommand } from '../operator.js';

export const disable = operatorCommand(
  {
    name: 'disable',
    summary: 'let every call through for the whole fleet (until reset)',
    description:
      'Every instance lets every call through and records nothing until `statebreaker reset NAME`.',
    options: CREATE_OPTION,
  },
  (store, name, create) => disableBreaker(store, name, create === undefined ? {} : { create }),
  'disabled',
);
