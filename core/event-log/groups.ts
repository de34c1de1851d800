/** Consumer group ids of UNICOP's own consumers (the bridge reports the resolver's lag). */
export const consumerGroups = {
  resolver: 'unicop-resolver',
  dispatcher: 'unicop-dispatcher',
} as const;
