/** Words and numbers shown to the user, in one place so the status bar and panel agree. */
import { ICentreQuota, IFigure } from './model';

export function hours(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '–';
  }
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** "41.5 core-h left (17% used)", or "no core-hour limit". */
export function remainingText(entry: ICentreQuota): string {
  const core = entry.core_hours;
  if (!core) {
    return entry.error ? 'figures not available' : 'no figures yet';
  }
  if (core.limit === null) {
    return `${hours(core.used)} core-h used, no limit`;
  }
  const left = core.remaining ?? Math.max(0, core.limit - (core.used ?? 0));
  return `${hours(left)} core-h left (${Math.round(core.percent ?? 0)}% used)`;
}

/** "12.0 of 50.0 core-h" for one figure of the panel. */
export function figureText(figure: IFigure | undefined, unit: string): string {
  if (!figure || figure.used === null) {
    return 'not reported';
  }
  if (figure.limit === null) {
    return `${hours(figure.used)} ${unit} used, no limit`;
  }
  return `${hours(figure.used)} of ${hours(figure.limit)} ${unit}`;
}

export function fraction(figure: IFigure | undefined): number | null {
  if (!figure || figure.used === null || !figure.limit) {
    return null;
  }
  return Math.min(1, figure.used / figure.limit);
}

export function readAtText(iso: string | undefined): string {
  if (!iso) {
    return 'not read yet';
  }
  const when = new Date(iso);
  return `read ${when.toLocaleString()}`;
}
