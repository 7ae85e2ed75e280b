/**
 * The countdown's words and its warning thresholds (no lab machinery: unit-tested with jest).
 */
import type { TranslationBundle } from '@jupyterlab/translation';

/** Minutes before the end at which the user is warned, latest first. */
export const WARN_AT_MINUTES = [15, 5];

/** "2 h 14 min", "14 min", "less than a minute". */
export function durationText(seconds: number, trans: TranslationBundle): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 1) {
    return trans.__('less than a minute');
  }
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? trans.__('%1 h %2 min', h, m) : trans.__('%1 min', m);
}

/** "2 h 14 min left". */
export function timeLeftText(seconds: number, trans: TranslationBundle): string {
  return trans.__('%1 left', durationText(seconds, trans));
}

/** The threshold (in minutes) a countdown has just reached, if any, given those already warned. */
export function dueWarning(seconds: number, warned: Set<number>): number | null {
  const due = WARN_AT_MINUTES.filter(at => seconds <= at * 60 && !warned.has(at));
  return due.length ? Math.min(...due) : null;
}
