/**
 * Problems a receiving system reports in a reject-submission event. `type` and `instance` follow
 * the names FIT-Connect documents for the checks a receiver must make; a check of our own (the
 * attachment size limit) uses a URN of this gateway instead of inventing a FIT-Connect URI.
 */
import { AmtError } from '../../src/errors.js';
import type { SubmissionProblem } from './events.js';

const FIT_CONNECT_PROBLEMS = 'https://schema.fitko.de/fit-connect/events/problems/';

const TITLES = {
  'encryption-issue': 'Entschlüsselungs-Fehler',
  'syntax-violation': 'Syntax-Fehler',
  'invalid-metadata-schema': 'Metadatenschema ungültig',
  'schema-violation': 'Schema-Fehler',
  'hash-mismatch': 'Prüfsumme stimmt nicht',
  'attachments-mismatch': 'Fehlerhafte Anlagen-Liste',
  'service-mismatch': 'Leistung stimmt nicht überein',
  'attachment-too-large': 'Anlage zu groß',
} as const;

export type ProblemKind = keyof typeof TITLES;

export function problem(kind: ProblemKind, instance: string, detail: string): SubmissionProblem {
  const type =
    kind === 'attachment-too-large'
      ? `urn:amtsbote:fit-connect:problems:${kind}`
      : FIT_CONNECT_PROBLEMS + kind;
  return { type, title: TITLES[kind], detail, instance };
}

/** Thrown while a received submission is checked: it must be answered with reject-submission. */
export class SubmissionRejected extends AmtError {
  constructor(readonly submissionProblems: readonly SubmissionProblem[]) {
    super(
      'AMT_FIT_CONNECT_SUBMISSION_INVALID',
      submissionProblems.map((p) => `${p.instance}: ${p.detail}`).join('; '),
      {
        problems: submissionProblems.map((p) => ({ path: p.instance, message: `${p.title}: ${p.detail}` })),
      },
    );
  }
}
