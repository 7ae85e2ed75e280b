/**
 * Words and numbers shown to the user, in one place so the status bar and panel agree. Every
 * sentence goes through the lab's translator (`trans`, the "fedhub_lab" domain).
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { ICentreQuota, IFigure } from './model';

export function hours(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '–';
  }
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** "41.5 core-h left (17% used)", or "no core-hour limit". */
export function remainingText(entry: ICentreQuota, trans: TranslationBundle): string {
  const core = entry.core_hours;
  if (!core) {
    return entry.error ? trans.__('figures not available') : trans.__('no figures yet');
  }
  if (core.limit === null) {
    return trans.__('%1 core-h used, no limit', hours(core.used));
  }
  const left = core.remaining ?? Math.max(0, core.limit - (core.used ?? 0));
  return trans.__('%1 core-h left (%2%% used)', hours(left), Math.round(core.percent ?? 0));
}

/** "Idle servers stopped this period gave back 3.5 core-h (2 servers)", or '' when none were. */
export function cullingText(entry: ICentreQuota, trans: TranslationBundle): string {
  const culling = entry.culling;
  if (!culling || !culling.servers_culled) {
    return '';
  }
  return trans._n(
    'Idle server stopped this period gave back %2 core-h',
    'Idle servers stopped this period (%1) gave back %2 core-h',
    culling.servers_culled,
    hours(culling.core_hours_returned)
  );
}

/** "12.0 of 50.0 core-h" for one figure of the panel. */
export function figureText(figure: IFigure | undefined, unit: string, trans: TranslationBundle): string {
  if (!figure || figure.used === null) {
    return trans.__('not reported');
  }
  if (figure.limit === null) {
    return trans.__('%1 %2 used, no limit', hours(figure.used), unit);
  }
  return trans.__('%1 of %2 %3', hours(figure.used), hours(figure.limit), unit);
}

export function fraction(figure: IFigure | undefined): number | null {
  if (!figure || figure.used === null || !figure.limit) {
    return null;
  }
  return Math.min(1, figure.used / figure.limit);
}

export function readAtText(iso: string | undefined, trans: TranslationBundle): string {
  if (!iso) {
    return trans.__('not read yet');
  }
  return trans.__('read %1', new Date(iso).toLocaleString());
}

/** "01:30:00": a walltime in seconds as Slurm writes it (whole minutes). */
export function walltimeText(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00`;
}
