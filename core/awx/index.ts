/** The AWX side of UNICOP: the typed client and its named errors. */
export * from './client.js';
export * from './errors.js';
