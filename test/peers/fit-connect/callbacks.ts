/** The emulator's callbacks: a POST with the HMAC headers the Zustelldienst sends. */
import { createHmac } from 'node:crypto';
import type { EmulatorState } from './state.js';

const NEW_SUBMISSIONS_CALLBACK =
  'https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions';

export async function sendNewSubmissionsCallback(
  state: EmulatorState,
  destinationId: string,
  submissionIds: readonly string[],
): Promise<void> {
  const callback = state.destinations.get(destinationId)?.callback;
  if (!callback) return;
  const body = JSON.stringify({ type: NEW_SUBMISSIONS_CALLBACK, submissionIds });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const auth = createHmac('sha512', callback.secret).update(`${timestamp}.${body}`).digest('hex');
  try {
    const response = await fetch(callback.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'callback-timestamp': timestamp,
        'callback-authentication': auth,
      },
      body,
    });
    state.callbacks.push({ destinationId, body, status: response.status, error: undefined });
  } catch (err) {
    state.callbacks.push({ destinationId, body, status: undefined, error: (err as Error).message });
  }
}
