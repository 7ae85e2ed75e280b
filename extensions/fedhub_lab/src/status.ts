/**
 * The status bar item: "<centre>: 41.5 core-h left (17% used)", coloured by the level the
 * quota service gives (warn and critical thresholds are the hub's). Clicking opens the panel.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { remainingText } from './format';
import { QuotaModel } from './model';

export class QuotaStatus extends Widget {
  constructor(model: QuotaModel, onClick: () => void, trans: TranslationBundle) {
    super();
    this.id = 'fedhub-quota-status';
    this.addClass('fedhub-quota-status');
    this._trans = trans;
    this.node.title = trans.__("Allocations at the federation's centres (click for all)");
    this.node.addEventListener('click', onClick);
    this._model = model;
    model.changed.connect(this.update, this);
    this.update();
  }

  /** Shown only while there are figures (or a reason to say they are missing). */
  get isActive(): boolean {
    return this._model.state.kind === 'figures' || this._model.state.kind === 'unavailable';
  }

  update(): void {
    const state = this._model.state;
    const trans = this._trans;
    this.node.classList.remove(
      'fedhub-level-ok',
      'fedhub-level-warn',
      'fedhub-level-critical',
      'fedhub-level-used-up',
      'fedhub-level-unavailable'
    );
    if (state.kind === 'figures') {
      const entry = this._model.current;
      const name = state.envelope.centre_name || state.envelope.centre;
      this.node.textContent = entry
        ? trans.__('%1: %2', name, remainingText(entry, trans))
        : trans.__('%1: no allocation figures', name);
      this.node.classList.add(`fedhub-level-${entry?.level ?? 'ok'}`);
    } else if (state.kind === 'unavailable') {
      this.node.textContent = trans.__('Allocations: service not answering');
      this.node.title = state.message;
      this.node.classList.add('fedhub-level-unavailable');
    } else {
      this.node.textContent = '';
    }
  }

  private _model: QuotaModel;
  private _trans: TranslationBundle;
}
