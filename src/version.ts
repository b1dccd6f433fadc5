/** The gateway's own version, read once from its package.json (in `dist/` or beside the sources). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let version: string | undefined;

/** `version` of the `amtsbote` package.json above this module; 0.0.0 when there is none. */
export function amtsboteVersion(): string {
  if (version !== undefined) return version;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'amtsbote' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // not here; look further up
    }
    dir = path.dirname(dir);
  }
  return (version = '0.0.0');
}
