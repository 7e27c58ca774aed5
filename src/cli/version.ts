/**
 * overseer's own version, for `overseer --version`: read from the package.json of the installed
 * package, found by walking up from this file (dist/src/cli/ when built, src/cli/ under tsx).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `version` of the nearest package.json named "overseer" above this file, or 'unknown'. */
export function packageVersion(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      // Another package.json on the way up (an app's own) is not ours: keep looking.
      if (manifest.name === 'overseer' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // none here, or unreadable
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
