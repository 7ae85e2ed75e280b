/**
 * The side panel: every centre's core-hours, GPU-hours and storage as bars with figures and
 * the time they were read. Built with DOM text nodes only (figures come from the network).
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { el } from './dom';
import { cullingText, figureText, fraction, readAtText, remainingText } from './format';
import { ICentreQuota, IFigure, QuotaModel } from './model';

/** A figure's unit as the user reads it (the row keeps the English one as its data-kind). */
function unitText(unit: string, trans: TranslationBundle): string {
  return unit === 'core-h' ? trans.__('core-h') : unit === 'GPU-h' ? trans.__('GPU-h') : unit;
}

/** A panel's reason a centre has no figures, in the user's language where the lab knows it. */
function errorText(error: string | null | undefined, trans: TranslationBundle): string {
  return !error ? trans.__('unknown') : error === 'not read yet' ? trans.__('not read yet') : error;
}

function bar(
  label: string,
  figure: IFigure | undefined,
  unit: string,
  level: string,
  trans: TranslationBundle
): HTMLElement {
  const row = el('div', 'fedhub-bar-row');
  row.dataset.kind = unit;
  row.appendChild(el('div', 'fedhub-bar-label', label));
  const track = el('div', 'fedhub-bar-track');
  const share = fraction(figure);
  if (share !== null) {
    const fill = el('div', `fedhub-bar-fill fedhub-level-${level}`);
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    track.appendChild(fill);
  } else {
    track.classList.add('fedhub-bar-nolimit');
  }
  row.appendChild(track);
  row.appendChild(el('div', 'fedhub-bar-figure', figureText(figure, unitText(unit, trans), trans)));
  return row;
}

export class QuotaPanel extends Widget {
  constructor(model: QuotaModel, trans: TranslationBundle) {
    super();
    this.id = 'fedhub-quota-panel';
    this._trans = trans;
    this.title.caption = trans.__('Allocations');
    this.title.label = trans.__('Allocations');
    this.addClass('fedhub-quota-panel');
    this._model = model;
    model.changed.connect(this.update, this);
    this.update();
  }

  update(): void {
    const state = this._model.state;
    const trans = this._trans;
    const node = this.node;
    node.replaceChildren();
    const header = el('div', 'fedhub-panel-header');
    header.appendChild(el('h2', 'fedhub-panel-title', trans.__('Allocations')));
    const refresh = el('button', 'jp-Button fedhub-refresh', trans.__('Refresh')) as HTMLButtonElement;
    refresh.addEventListener('click', () => void this._model.refreshNow());
    header.appendChild(refresh);
    node.appendChild(header);
    if (state.kind === 'unknown') {
      node.appendChild(el('p', 'fedhub-panel-message', trans.__('Reading allocations…')));
      return;
    }
    if (state.kind !== 'figures') {
      node.appendChild(
        el('p', 'fedhub-panel-message fedhub-unavailable', trans.__('Allocations are not available: %1', state.message))
      );
      return;
    }
    const env = state.envelope;
    const t = env.quota.thresholds;
    node.appendChild(
      el(
        'p',
        'fedhub-panel-note',
        trans.__(
          'This server runs at %1. Warnings at %2%% and %3%% used.',
          env.centre_name || env.centre,
          t.warn,
          t.critical
        )
      )
    );
    if (env.quota.centres.length === 0) {
      node.appendChild(
        el('p', 'fedhub-panel-message', trans.__('You have no login at a centre that keeps allocations.'))
      );
    }
    for (const entry of env.quota.centres) {
      node.appendChild(this._centre(entry, entry.centre === env.centre));
    }
  }

  private _centre(entry: ICentreQuota, here: boolean): HTMLElement {
    const trans = this._trans;
    const box = el('section', 'fedhub-centre' + (here ? ' fedhub-centre-current' : ''));
    box.dataset.centre = entry.centre;
    const title = el(
      'h3',
      'fedhub-centre-name',
      entry.name + (entry.project ? ` · ${entry.project}` : '') + (here ? ' ' + trans.__('(this server)') : '')
    );
    box.appendChild(title);
    if (!entry.core_hours) {
      box.appendChild(
        el('p', 'fedhub-centre-error', trans.__('Figures not available: %1', errorText(entry.error, trans)))
      );
      return box;
    }
    const level = entry.level ?? 'ok';
    box.appendChild(el('p', `fedhub-centre-summary fedhub-level-${level}`, remainingText(entry, trans)));
    box.appendChild(bar(trans.__('Core-hours'), entry.core_hours, 'core-h', level, trans));
    box.appendChild(bar(trans.__('GPU-hours'), entry.gpu_hours, 'GPU-h', 'ok', trans));
    box.appendChild(bar(trans.__('Storage'), entry.storage_gb, 'GB', 'ok', trans));
    const culled = cullingText(entry, trans);
    if (culled) {
      box.appendChild(el('p', 'fedhub-centre-culled', culled));
    }
    const meta =
      trans.__('Charged to %1 · %2', entry.charge_account, readAtText(entry.read_at, trans)) +
      (entry.error ? ' · ' + trans.__('last read failed: %1', entry.error) : '');
    box.appendChild(el('p', 'fedhub-centre-meta', meta));
    return box;
  }

  private _model: QuotaModel;
  private _trans: TranslationBundle;
}
