// Starts a worker thread's TypeScript entry when the gateway runs from source under tsx:
// registers tsx in this thread, then imports the entry. Resolving 'tsx/esm/api' from this file
// finds the project's tsx wherever the process was started.
import { register } from 'tsx/esm/api';

export async function start(entry) {
  register();
  await import(entry);
}
