/**
 * Start-up marks (User Timing): `magpie:<step>` with a detail, so a slow or wrong offline
 * start can be read from the page (`performance.getEntriesByType('mark')`, and the browser
 * tests print them when the list does not show).
 */
export function bootMark(step: string, detail?: unknown): void {
  try {
    performance.mark(`magpie:${step}`, detail === undefined ? undefined : { detail });
  } catch {
    /* no User Timing: nothing to record */
  }
}
