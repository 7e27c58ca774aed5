/** What `overseer ctl status` shows of a ManifestFetcher (fetchers/manifest.ts manifestStatus()). */
import type { ReleaseChoice } from './document.js';

export interface ManifestStatus {
  readonly source: string;
  readonly channel: string;
  readonly instanceId: string | undefined;
  readonly sequence: number | undefined;
  readonly expires: string | undefined;
  readonly newest: ReleaseChoice['newest'];
  readonly action: ReleaseChoice['action'] | undefined;
  readonly reason: string | undefined;
  readonly refused: { readonly code: string; readonly error: string; readonly at: number } | undefined;
}
