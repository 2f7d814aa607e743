/** This process, as probe ids and quorums tell processes apart. */
export const instanceId = Math.random().toString(36).slice(2, 10);
